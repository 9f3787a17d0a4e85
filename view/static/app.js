// threatpipe view: refreshes the ranked table from the JSON API with the page's own filters.
// Loaded from /static/ (the Content-Security-Policy allows no inline script). Indicator data is
// attacker-influenced (ISP names, tags), so every value goes into the page as text, never HTML.
(function () {
  'use strict';
  var table = document.getElementById('indicators');
  if (!table || !window.fetch) {
    return;
  }
  var api = table.getAttribute('data-api');
  var every = parseInt(table.getAttribute('data-refresh-ms'), 10) || 5000;
  var offset = parseInt(table.getAttribute('data-offset'), 10) || 0;
  var status = document.getElementById('refresh-status');
  var severities = ['info', 'low', 'medium', 'high', 'critical'];

  function sevClass(s) {
    return severities.indexOf(s) >= 0 ? 'sev-' + s : 'sev-info';
  }

  function ago(iso) {
    var t = Date.parse(iso);
    if (!iso || isNaN(t) || t <= 0) {
      return 'never';
    }
    var d = (Date.now() - t) / 1000;
    if (d < 0) { return 'just now'; }
    if (d < 60) { return Math.floor(d) + 's ago'; }
    if (d < 3600) { return Math.floor(d / 60) + 'm ago'; }
    if (d < 172800) { return Math.floor(d / 3600) + 'h ago'; }
    return Math.floor(d / 86400) + 'd ago';
  }

  function td(text, cls) {
    var c = document.createElement('td');
    if (cls) { c.className = cls; }
    if (text !== undefined && text !== null) { c.textContent = String(text); }
    return c;
  }

  function timeCell(iso) {
    var c = document.createElement('td');
    var t = document.createElement('time');
    t.setAttribute('datetime', iso || '');
    t.title = iso || '';
    t.textContent = ago(iso);
    c.appendChild(t);
    return c;
  }

  function row(r, i) {
    var tr = document.createElement('tr');
    tr.appendChild(td(offset + i + 1, 'num'));
    var ip = td(null, 'ip');
    var a = document.createElement('a');
    a.href = '/indicators/' + encodeURIComponent(r.ip);
    a.textContent = r.ip;
    ip.appendChild(a);
    tr.appendChild(ip);
    var score = td(r.score, 'num score ' + sevClass(r.severity));
    score.title = 'priority ' + (r.priority || 0) + ' · evidence credit +' + (r.credit_hours || 0) + ' h';
    tr.appendChild(score);
    var sev = td(null);
    var badge = document.createElement('span');
    badge.className = 'badge ' + sevClass(r.severity);
    badge.textContent = r.severity;
    sev.appendChild(badge);
    tr.appendChild(sev);
    tr.appendChild(td(r.confidence || 0, 'num'));
    var agree = td(null, 'agree');
    (r.validated_by || []).forEach(function (src) {
      var s = document.createElement('span');
      s.className = 'src';
      s.textContent = src;
      agree.appendChild(s);
      agree.appendChild(document.createTextNode(' '));
    });
    tr.appendChild(agree);
    var tags = td(null, 'tags');
    (r.tags || []).forEach(function (tag) {
      var s = document.createElement('span');
      s.className = 'tag';
      s.textContent = tag;
      tags.appendChild(s);
      tags.appendChild(document.createTextNode(' '));
    });
    tr.appendChild(tags);
    tr.appendChild(td(r.country || ''));
    tr.appendChild(td(r.isp || '', 'isp'));
    tr.appendChild(td((r.asn ? 'AS' + r.asn + ' ' : '') + (r.as_org || '')));
    tr.appendChild(timeCell(r.first_seen));
    tr.appendChild(timeCell(r.last_seen));
    tr.appendChild(td(r.sightings, 'num'));
    return tr;
  }

  function render(page) {
    var body = document.createElement('tbody');
    (page.indicators || []).forEach(function (r, i) { body.appendChild(row(r, i)); });
    table.replaceChild(body, table.tBodies[0]);
    if (status) {
      status.textContent = '· updated ' + new Date().toLocaleTimeString() + ' (' + page.total + ' matching)';
    }
  }

  function tick() {
    fetch(api, { headers: { Accept: 'application/json' }, cache: 'no-store', credentials: 'same-origin' })
      .then(function (res) {
        if (!res.ok) { throw new Error('HTTP ' + res.status); }
        return res.json();
      })
      .then(render)
      .catch(function (err) {
        if (status) { status.textContent = '· refresh failed (' + err.message + '); retrying'; }
      })
      .then(function () { setTimeout(tick, every); });
  }

  setTimeout(tick, every);
})();
