/* Live view of a real-time product: its current rows from the DataStore,
   then every observation from the product's Server-Sent Events stream (the
   browser's EventSource reconnects with Last-Event-ID on its own). Text is
   set with textContent only: pushed values are never read as HTML. */
(function () {
  'use strict';
  var LIMIT = 20;

  function setup(box) {
    var keyField = box.dataset.keyField, timeField = box.dataset.timeField;
    var head = box.querySelector('thead tr'), body = box.querySelector('tbody');
    var state = box.querySelector('.sh-realtime-live-state');
    var rows = {}, columns = [];

    function cell(tag, text) {
      var element = document.createElement(tag);
      element.textContent = text === null || text === undefined ? '' : String(text);
      return element;
    }

    function show(record) {
      var key = String(record[keyField]);
      var row = rows[key];
      if (row && String(row.dataset.time) > String(record[timeField])) {
        return;  // an older observation that arrived late
      }
      if (!row) {
        if (Object.keys(rows).length >= LIMIT) { return; }
        row = rows[key] = document.createElement('tr');
        body.appendChild(row);
      }
      row.dataset.time = record[timeField];
      row.replaceChildren.apply(row, columns.map(function (name) { return cell('td', record[name]); }));
      row.classList.remove('sh-realtime-changed');
      void row.offsetWidth;
      row.classList.add('sh-realtime-changed');
    }

    fetch(box.dataset.searchUrl, {credentials: 'same-origin'}).then(function (response) {
      return response.json();
    }).then(function (answer) {
      if (!answer.success) { return; }
      columns = answer.result.fields.map(function (f) { return f.id; })
        .filter(function (id) { return id.charAt(0) !== '_'; });
      head.replaceChildren.apply(head, columns.map(function (name) { return cell('th', name); }));
      answer.result.records.forEach(show);
      var source = new EventSource(box.dataset.streamUrl, {withCredentials: true});
      source.addEventListener('open', function () { state.textContent = box.dataset.liveText; });
      source.addEventListener('error', function () { state.textContent = box.dataset.reconnectingText; });
      source.addEventListener('observation', function (event) {
        var observation = JSON.parse(event.data);
        if (observation.deleted) {
          var gone = rows[observation.key];
          if (gone) { gone.remove(); delete rows[observation.key]; }
          return;
        }
        show(observation.record);
      });
    });
  }

  document.querySelectorAll('[data-sh-realtime-live]').forEach(setup);
}());
