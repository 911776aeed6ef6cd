// Import: a CSV or NDJSON file of numbers uploaded to POST /v1/numbers:import, with a
// progress bar fed by the upload's progress, then the result (numbers, routes,
// deletions) or the lines the server refused. An import is all or nothing: when any
// line is refused, nothing is committed.

import { h, fill, field } from '../dom.js';
import { api, upload } from '../api.js';
import { page, errorBox, showError, clearError, statusLine, keepFocus } from './common.js';

const TYPES = { csv: 'text/csv', ndjson: 'application/x-ndjson' };

export async function show(main) {
  page(main, 'Import numbers',
    'Sets or deletes many numbers in one change: every line commits, or none does. CSV has a header line naming columns among number, uri, order, preference, ttl, service (an empty uri deletes the number); NDJSON has one number body with "number" per line.');
  const file = h('input', { type: 'file', accept: '.csv,.ndjson,.jsonl,text/csv,application/x-ndjson', required: true });
  const format = h('select', {},
    h('option', { value: 'auto' }, 'By the file name (.csv, .ndjson, .jsonl)'),
    h('option', { value: 'csv' }, 'CSV'),
    h('option', { value: 'ndjson' }, 'NDJSON'));
  const zone = h('select', {}, h('option', { value: '' }, 'Any local zone'));
  const merge = h('input', { type: 'radio', name: 'mode', value: 'merge', id: 'mode-merge', checked: true });
  const replace = h('input', { type: 'radio', name: 'mode', value: 'replace', id: 'mode-replace' });
  const submit = h('button', { type: 'submit', id: 'import-button' }, 'Upload and import');
  const form = h('form', { class: 'card', id: 'import-form', novalidate: true },
    field('import-file', 'File', file),
    field('import-format', 'Format', format),
    h('fieldset', { class: 'radios' }, h('legend', {}, 'Mode'),
      h('div', { class: 'check' }, merge, h('label', { for: 'mode-merge' }, 'Merge: set or delete the numbers named; others stay')),
      h('div', { class: 'check' }, replace, h('label', { for: 'mode-replace' }, 'Replace: the zone ends up with exactly the file\u2019s numbers (needs a zone)'))),
    field('import-zone', 'Zone', zone, 'With a zone, every number must fall in it.'),
    h('div', { class: 'buttons' }, submit));
  const progressBar = h('progress', { id: 'import-progress', max: '100', value: '0' });
  const progressText = h('span', { id: 'import-progress-text' }, '');
  const progress = h('div', { class: 'progress', id: 'import-progress-box', hidden: true },
    h('label', { for: 'import-progress' }, 'Upload'), progressBar, progressText);
  const errors = errorBox('import-error');
  const status = statusLine('import-status');
  const result = h('section', { id: 'import-result', class: 'card', hidden: true, 'aria-label': 'Import result' });
  main.append(form, progress, status, errors, result);

  try {
    const { items } = await api('GET', '/v1/zones');
    for (const z of items.filter((z) => z.type === 'primary')) zone.append(h('option', { value: z.origin }, z.origin));
  } catch (err) {
    showError(errors, err, 'Could not list the zones');
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearError(errors);
    result.hidden = true;
    const chosen = file.files[0];
    if (!chosen) {
      showError(errors, new Error('choose a file to import'), 'No file');
      file.focus();
      return;
    }
    const kind = format.value !== 'auto' ? format.value : (/\.(ndjson|jsonl)$/i.test(chosen.name) ? 'ndjson' : 'csv');
    const mode = replace.checked ? 'replace' : 'merge';
    if (mode === 'replace' && !zone.value) {
      showError(errors, new Error('a replace import needs the zone whose numbers it replaces'), 'No zone');
      zone.focus();
      return;
    }
    const q = new URLSearchParams({ mode });
    if (zone.value) q.set('zone', zone.value);
    submit.disabled = true;
    progress.hidden = false;
    progressBar.value = 0;
    status.textContent = `Uploading ${chosen.name}\u2026`;
    try {
      const counts = await upload(`/v1/numbers:import?${q}`, chosen, TYPES[kind], (sent, total, done) => {
        const pct = total ? Math.round((sent / total) * 100) : 0;
        progressBar.value = pct;
        progressText.textContent = `${pct}% (${bytes(sent)} of ${bytes(total)})`;
        if (done) status.textContent = `Uploaded ${chosen.name}; the server is checking and committing it\u2026`;
      });
      status.textContent = `Imported ${chosen.name}: committed and already served.`;
      fill(result,
        h('h2', {}, 'Imported'),
        h('dl', { class: 'facts', id: 'import-counts' },
          h('dt', {}, 'Numbers set'), h('dd', {}, String(counts.numbers)),
          h('dt', {}, 'Routes written'), h('dd', {}, String(counts.routes)),
          h('dt', {}, 'Numbers deleted'), h('dd', {}, String(counts.deleted))),
        counts.warnings?.length ? [
          h('h3', {}, 'Warnings'),
          h('ul', { class: 'warnings' }, counts.warnings.map((w) => h('li', {}, `${w.line ? `line ${w.line}: ` : ''}${w.field ? `${w.field}: ` : ''}${w.detail ?? w}`))),
          counts.total_warnings > counts.warnings.length ? h('p', {}, `${counts.total_warnings} warnings in all; the first ${counts.warnings.length} are listed.`) : null,
        ] : null);
      result.hidden = false;
    } catch (err) {
      if (err.uploaded) {
        // The server commits an upload it has whole even when its answer is lost.
        status.textContent = 'The connection was lost after the upload: the import may have been committed. Look the numbers up before importing again.';
        showError(errors, err, `No answer about ${chosen.name}`);
      } else {
        status.textContent = 'Nothing was committed.';
        showError(errors, err, `${chosen.name} was not imported`);
      }
    } finally {
      submit.disabled = false;
      keepFocus(status);
    }
  });
}

function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} kB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}
