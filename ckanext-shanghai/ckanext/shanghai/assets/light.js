/* The little a page without CKAN's scripts needs (home, statistics and a
   department's page for visitors): the menu button of a narrow screen opens
   and closes the menu, the search filters open and close on a phone, a flash
   message can be closed. Bootstrap's and CKAN's markup, without their
   scripts; one listener on the document, so content htmx swaps in works too. */
(function () {
  document.addEventListener('click', function (event) {
    var target = event.target;
    if (!target.closest) { return; }
    var toggle = target.closest('[data-bs-toggle="collapse"]');
    if (toggle) {
      var menu = document.querySelector(toggle.getAttribute('data-bs-target'));
      if (menu) {
        var open = menu.classList.toggle('show');
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
