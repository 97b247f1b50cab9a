/* The simulator's Embedded Signup dialog: one screen at a time, Continue / Cancel / Finish, a way
   to report an error or end with one, and options that decide what Finish produces. It posts Meta's
   session messages (WA_EMBEDDED_SIGNUP; version 3 when launched with sessionInfoVersion '3') to the page
   that opened it, and the code to sdk.js. */
(() => {
  'use strict';
  const root = document.querySelector('[data-dialog]');
  const openerOrigin = root.dataset.openerOrigin;
  const screens = Array.from(root.querySelectorAll('[data-screen]'));
  const button = (name) => root.querySelector(`[data-${name}]`);
  const field = (name) => root.querySelector(`[name="${name}"]`);
  const reportForm = button('report');
  // Meta's dialog makes a session id per session; people quote it to support.
  const sessionId = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, '0')).join('').slice(0, 15);
  let index = 0;
  let done = false;

  if (!window.opener) button('no-opener').hidden = false;

  function showScreen(next) {
    index = next;
    screens.forEach((screen, position) => { screen.hidden = position !== index; });
    const last = index === screens.length - 1;
    button('continue').hidden = last;
    button('finish').hidden = !last;
    screens[index].querySelector('h1').focus();
  }

  function post(message) {
    if (window.opener) window.opener.postMessage(JSON.stringify(message), openerOrigin);
  }
  const version = root.dataset.sessionInfoVersion ? Number(root.dataset.sessionInfoVersion) : null;
  const session = (event, data) => post(version === null
    ? { data, type: 'WA_EMBEDDED_SIGNUP', event } : { data, type: 'WA_EMBEDDED_SIGNUP', event, version });
  const loginResult = (code) => post({ type: 'ESU_SIMULATOR_LOGIN_RESULT', code });

  function leave(data, event = 'CANCEL') {
    if (done) return;
    done = true;
    session(event, data);
    loginResult(null);
  }

  function digits(value, max) {
    return String(value || '').replace(/\D/g, '').slice(0, max);
  }

  async function finish() {
    if (done) return;
    done = true;
    button('finish').disabled = true;
    const code = digits(field('phone_code').value, 4);
    const number = digits(field('phone_number').value, 15);
    const options = {
      business_name: field('business_name').value.trim() || field('business_name').placeholder,
      phone_verified: !field('unverified').checked,
      phone: !field('no_phone').checked,
      coexistence: field('coexistence').checked,
      wabas: Math.max(1, parseInt(field('wabas').value, 10) || 1),
      assets: Array.from(root.querySelectorAll('[name="asset"]:checked'), (box) => box.value),
    };
    if (field('finish').value) options.finish = field('finish').value;
    if (field('two_step_pin').value.trim()) options.two_step_pin = field('two_step_pin').value.trim();
    options.currency = field('currency').value;
    if (code && number) options.display_phone_number = `+${code} ${number}`;
    let signup;
    try {
      const response = await fetch(root.dataset.signupUrl, {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(options),
      });
      if (!response.ok) throw new Error(`the simulator answered ${response.status}`);
      signup = await response.json();
    } catch (error) {
      done = false;
      button('finish').disabled = false;
      const failure = button('failure');
      failure.textContent = root.dataset.failureText.replace('%(reason)s', error.message);
      failure.hidden = false;
      return;
    }
    // The message's data exactly as the simulator made it, Meta's shape (implementation.md).
    const data = signup.data;
    const sendSession = !field('no_session').checked;
    if (root.querySelector('[name="order"]:checked').value === 'code-first') {
      loginResult(signup.code);
      if (sendSession) session(signup.event, data);
    } else {
      if (sendSession) session(signup.event, data);
      loginResult(signup.code);
    }
  }

  button('continue').addEventListener('click', () => showScreen(Math.min(index + 1, screens.length - 1)));
  button('finish').addEventListener('click', finish);
  button('cancel').addEventListener('click', () => leave({ current_step: screens[index].dataset.screen }));
  button('show-report').addEventListener('click', () => {
    reportForm.hidden = false;
    field('error').focus();
  });
  reportForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const choice = field('error').selectedOptions[0];
    // A report is a CANCEL with the error (implementation.md, "User reported errors"); the page shows no
    // data for an ERROR ending, which carries the same fields here.
    const asError = event.submitter && event.submitter.name === 'as_event';
    leave({ error_message: choice.textContent.trim(), error_code: choice.value, session_id: sessionId,
      timestamp: String(Math.floor(Date.now() / 1000)) }, asError ? 'ERROR' : 'CANCEL');
  });
  // Closing the window part-way is abandoning the flow, which Meta reports with the screen left.
  window.addEventListener('pagehide', () => leave({ current_step: screens[index].dataset.screen }));
  showScreen(0);
})();
