/* Maps of points fed by a GeoJSON address (Leaflet, vendored at install).
   Every element with data-sh-map draws itself: data-geojson is the
   FeatureCollection to fetch, data-tiles the tile server's URL template
   (empty: no tiles), data-attribution its credit, data-label-field the
   property naming a point. The points draw whether or not a tile server
   answers. A map draws once it comes within 200 px of the screen. Other
   pages reuse it: shanghaiMap.draw(element) draws one more
   element, shanghaiMap.refresh(element) fetches its GeoJSON again (the
   real-time tables' latest values). */
(function () {
  'use strict';
  if (!window.L) { return; }
  var maps = [];

  function text(el, name) { return el.getAttribute('data-' + name) || ''; }

  function popup(feature, labelField) {
    var box = document.createElement('div');
    var props = feature.properties || {};
    var title = document.createElement('strong');
    title.textContent = props[labelField] != null ? String(props[labelField]) : '';
    box.appendChild(title);
    var list = document.createElement('dl');
    list.className = 'sh-map-popup';
    Object.keys(props).slice(0, 8).forEach(function (key) {
      if (key === labelField || props[key] === null || props[key] === '') { return; }
      var term = document.createElement('dt');
      term.textContent = key;
      var value = document.createElement('dd');
      value.textContent = String(props[key]);
      list.appendChild(term);
      list.appendChild(value);
    });
    box.appendChild(list);
    return box;
  }

  function setStatus(el, message) {
    var status = el.parentNode.querySelector('.sh-map-status');
    if (status) { status.textContent = message; }
  }

  function load(entry) {
    var el = entry.element;
    el.setAttribute('aria-busy', 'true');
    return fetch(text(el, 'geojson'), {credentials: 'same-origin'})
      .then(function (response) {
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.json();
      })
      .then(function (collection) {
        if (entry.points) { entry.map.removeLayer(entry.points); }
        var labelField = text(el, 'label-field');
        entry.points = L.geoJSON(collection, {
          pointToLayer: function (feature, latlng) {
            return L.circleMarker(latlng, {radius: 5, weight: 1, color: '#0b4f8a', fillColor: '#1f77d0',
                                           fillOpacity: 0.75});
          },
          onEachFeature: function (feature, layer) {
            layer.bindPopup(function () { return popup(feature, labelField); });
            var name = (feature.properties || {})[labelField];
            if (name != null) { layer.bindTooltip(String(name)); }
          }
        }).addTo(entry.map);
        var count = (collection.features || []).length;
        el.setAttribute('data-points', String(count));
        el.removeAttribute('aria-busy');
        setStatus(el, text(el, 'points-text').replace('%s', count));
        if (count) { entry.map.fitBounds(entry.points.getBounds(), {padding: [12, 12], maxZoom: 15}); }
      })
      .catch(function () {
        el.removeAttribute('aria-busy');
        el.setAttribute('data-points', 'error');
        setStatus(el, text(el, 'error-text'));
      });
  }

  function draw(el) {
    if (el.getAttribute('data-sh-map-drawn')) { return null; }
    el.setAttribute('data-sh-map-drawn', '1');
    var map = L.map(el, {scrollWheelZoom: false, attributionControl: true, zoomControl: false});
    L.control.zoom({zoomInTitle: text(el, 'zoom-in-text') || 'Zoom in',
                    zoomOutTitle: text(el, 'zoom-out-text') || 'Zoom out'}).addTo(map);
    map.attributionControl.setPrefix(false);
    map.setView([31.23, 121.47], 9);
    var tiles = text(el, 'tiles');
    if (tiles) {
      var layer = L.tileLayer(tiles, {attribution: text(el, 'attribution'), maxZoom: 18});
      // An unreachable tile server only leaves the background plain.
      layer.on('tileerror', function () { el.classList.add('sh-map-no-tiles'); });
      layer.addTo(map);
    } else {
      el.classList.add('sh-map-no-tiles');
    }
    var entry = {element: el, map: map, points: null};
    maps.push(entry);
    load(entry);
    return entry;
  }

  function refresh(el) {
    for (var i = 0; i < maps.length; i++) {
      if (maps[i].element === el) { return load(maps[i]); }
    }
    return null;
  }

  window.shanghaiMap = {draw: draw, refresh: refresh};
  // A map draws when it comes near the screen: hundreds of points drawn as
  // the page loads hold up a phone's first paint for a map below the fold.
  function start() {
    var elements = document.querySelectorAll('[data-sh-map]');
    if (!('IntersectionObserver' in window)) {
      Array.prototype.forEach.call(elements, draw);
      return;
    }
    var watcher = new IntersectionObserver(function (entries) {
      entries.forEach(function (seen) {
        if (!seen.isIntersecting) { return; }
        watcher.unobserve(seen.target);
        draw(seen.target);
      });
    }, {rootMargin: '200px 0px'});
    Array.prototype.forEach.call(elements, function (el) { watcher.observe(el); });
  }
  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', start); } else { start(); }
})();
