// Reading the Prometheus text format (the subset /metrics writes: `name{labels} value`
// lines, # comments) into samples, and summing them by name and labels.

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Samples of the text: [{name, labels, value}]. */
export function parse(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[2]) {
      for (const l of m[2].matchAll(LABEL)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** The sum of `name`'s samples whose labels pass `keep` (null: the family is absent). */
export function sum(samples, name, keep = () => true) {
  let total = null;
  for (const s of samples) {
    if (s.name === name && keep(s.labels)) total = (total ?? 0) + s.value;
  }
  return total;
}

/** `name`'s samples summed by the value of `label`. */
export function byLabel(samples, name, label) {
  const out = {};
  for (const s of samples) {
    if (s.name === name) out[s.labels[label]] = (out[s.labels[label]] ?? 0) + s.value;
  }
  return out;
}
