// Sign-in: the admin token, tried against the API before it is kept (in this tab's
// sessionStorage only). A refused token shows the API's own 401.

import { h } from '../dom.js';
import { api } from '../api.js';
import { page, errorBox, showError, clearError } from './common.js';

export function signIn(main, done) {
  page(main, 'Sign in');
  const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off', required: true, spellcheck: 'false' });
  const errors = errorBox('signin-error');
  const button = h('button', { type: 'submit', id: 'sign-in' }, 'Sign in');
  const form = h('form', { class: 'card narrow', 'aria-labelledby': 'view-title' },
    h('div', { class: 'field' }, h('label', { for: 'token' }, 'Admin token'), input,
      h('p', { class: 'hint', id: 'token-hint' },
        'The token is in the server\u2019s admin.token_file (data/admin.token with the shipped configuration) or its ENROUTE_ADMIN_TOKEN. It is kept in this browser tab only and sent only to this server.')),
    errors,
    h('div', { class: 'buttons' }, button));
  input.setAttribute('aria-describedby', 'token-hint');
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    button.disabled = true;
    clearError(errors);
    try {
      await api('GET', '/v1/zones', { token });
      done(token);
    } catch (err) {
      showError(errors, err, 'Not signed in');
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      input.select();
    } finally {
      button.disabled = false;
    }
  });
  main.append(form);
  input.focus();
}
