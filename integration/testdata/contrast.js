// Measures, in the page as rendered, the contrast of every piece of text
// against what is really behind it (background colours composited up the
// tree, the page's own background last), and of the focus ring against the
// page. axe alone misreads text on a dark canvas, so the tests check this too.
(() => {
  const parse = (c) => {
    const m = c.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const over = (top, under) => ({
    r: top.r * top.a + under.r * (1 - top.a),
    g: top.g * top.a + under.g * (1 - top.a),
    b: top.b * top.a + under.b * (1 - top.a), a: 1 });
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
  const backdrop = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) layers.push(c);
    }
    let bg = { r: 255, g: 255, b: 255, a: 1 };
    if (matchMedia("(prefers-color-scheme: dark)").matches) bg = { r: 18, g: 18, b: 18, a: 1 };
    for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
    return bg;
  };
  const fails = [];
  for (const el of document.body.querySelectorAll("*")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim() !== "");
    if (!own || el.offsetParent === null && getComputedStyle(el).position !== "fixed") continue;
    const s = getComputedStyle(el);
    const fg = over(parse(s.color), backdrop(el));
    const r = ratio(fg, backdrop(el));
    const size = parseFloat(s.fontSize), bold = parseInt(s.fontWeight, 10) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (r < need) fails.push(`${el.tagName.toLowerCase()} "${el.textContent.trim().slice(0, 40)}": ${r.toFixed(2)}:1 (${s.color} on rgb(${Math.round(backdrop(el).r)}, ${Math.round(backdrop(el).g)}, ${Math.round(backdrop(el).b)})), needs ${need}:1`);
  }
  const ring = parse(getComputedStyle(document.body).getPropertyValue("--link").trim().replace(/^#(..)(..)(..)$/, (_, r, g, b) => `rgb(${parseInt(r, 16)}, ${parseInt(g, 16)}, ${parseInt(b, 16)})`));
  if (!ring) fails.push("no --link colour for the focus ring");
  else if (ratio(ring, backdrop(document.body)) < 3) fails.push(`focus ring ${ratio(ring, backdrop(document.body)).toFixed(2)}:1 against the page, needs 3:1`);
  return fails;
})()
