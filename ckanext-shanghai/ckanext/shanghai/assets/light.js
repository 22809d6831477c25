/* The little a page without CKAN's scripts needs (home, statistics, a data
   product and a department's page for visitors): the menu button of a
   narrow screen opens and closes the menu, a resource's menu opens below its
   button and closes on Escape or a click elsewhere, the search filters open
   and close on a phone, a flash message can be closed. Bootstrap's and
   CKAN's markup, without their scripts; one listener on the document, so
   content htmx swaps in works too. */
(function () {
  function closeMenus(except) {
    document.querySelectorAll('.dropdown-menu.show').forEach(function (menu) {
      if (menu === except) { return; }
      menu.classList.remove('show');
      var button = menu.parentNode.querySelector('[data-bs-toggle="dropdown"]');
      if (button) { button.classList.remove('show'); button.setAttribute('aria-expanded', 'false'); }
    });
  }

  document.addEventListener('keydown', function (event) {
    if (event.key === 'Escape') { closeMenus(null); }
  });

  document.addEventListener('click', function (event) {
    var target = event.target;
    if (!target.closest) { return; }
    var opener = target.closest('[data-bs-toggle="dropdown"]');
    var menu = opener && opener.parentNode.querySelector('.dropdown-menu');
    closeMenus(menu);
    if (menu) {
      event.preventDefault();
      var shown = menu.classList.toggle('show');
      menu.setAttribute('data-bs-popper', 'static');
      opener.classList.toggle('show', shown);
      opener.setAttribute('aria-expanded', shown ? 'true' : 'false');
      return;
    }
    var toggle = target.closest('[data-bs-toggle="collapse"]');
    if (toggle) {
      var panel = document.querySelector(toggle.getAttribute('data-bs-target'));
      if (panel) {
        var open = panel.classList.toggle('show');
        toggle.setAttribute('aria-expanded', open ? 'true' : 'false');
        toggle.classList.toggle('collapsed', !open);
      }
      return;
    }
    if (target.closest('.show-filters')) { document.body.classList.add('filters-modal'); return; }
    if (target.closest('.hide-filters')) { document.body.classList.remove('filters-modal'); return; }
    var dismiss = target.closest('[data-bs-dismiss="alert"]');
    if (dismiss && dismiss.closest('.alert')) { dismiss.closest('.alert').remove(); }
  });
})();
