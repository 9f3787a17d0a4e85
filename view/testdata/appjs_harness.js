// Runs static/app.js against a minimal fake DOM and a fake fetch, then prints what it rendered
// as JSON. Used by TestAppJSRendersRowsAsText (node is optional; the test skips without it).
'use strict';
const fs = require('fs');
const src = fs.readFileSync(process.argv[2], 'utf8');
const page = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));

function el(tag) {
  return {
    tagName: tag.toUpperCase(), children: [], attrs: {}, className: '', textContent: '', title: '', href: '',
    appendChild(c) { this.children.push(c); return c; },
    setAttribute(k, v) { this.attrs[k] = String(v); },
    getAttribute(k) { return k in this.attrs ? this.attrs[k] : null; },
    replaceChild(n, o) { this.children[this.children.indexOf(o)] = n; return o; },
  };
}
const table = el('table');
table.children.push(el('tbody'));
Object.defineProperty(table, 'tBodies', { get() { return this.children.filter((c) => c.tagName === 'TBODY'); } });
table.attrs = { 'data-api': '/api/v1/indicators?tag=tor', 'data-refresh-ms': '1500', 'data-offset': '50' };
const status = el('span');
global.document = {
  getElementById(id) { return id === 'indicators' ? table : id === 'refresh-status' ? status : null; },
  createElement: el,
  createTextNode(t) { return { textContent: t, children: [] }; },
};
global.window = { fetch: true };
const fetched = [];
global.fetch = (url) => {
  fetched.push(url);
  return Promise.resolve({ ok: true, status: 200, json: () => Promise.resolve(page) });
};
const timers = [];
const realSetImmediate = setImmediate;
global.setTimeout = (fn, ms) => { timers.push({ fn, ms }); };

new Function(src)();
const first = timers.shift();
first.fn();
realSetImmediate(() => realSetImmediate(() => {
  const text = (n) => (n.textContent || '') + (n.children || []).map(text).join('');
  const rows = table.tBodies[0].children.map((tr) => tr.children.map((td) => ({
    text: text(td), cls: td.className, html: (td.children || []).map((c) => c.tagName || '#text').join(','),
    href: (td.children || []).map((c) => c.href || '').join(''),
  })));
  process.stdout.write(JSON.stringify({ firstDelay: first.ms, fetched, rescheduled: timers.map((t) => t.ms), rows, status: status.textContent }));
}));
