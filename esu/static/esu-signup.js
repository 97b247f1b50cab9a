/* The Embedded Signup widget (templates/signup/_widget.html): loads the Facebook SDK, opens Meta's
   dialog, reports the funnel, hands the code to the page's callback, follows the onboarding step by
   step and asks for the verification code when Meta left the number unverified, or for the PIN a number
   with two-step verification already has.
   No inline script anywhere: settings come from the widget's JSON block. */
(() => {
  'use strict';
  const root = document.querySelector('[data-esu-signup]');
  if (!root) return;
  const settings = JSON.parse(root.querySelector('[data-esu-settings]').textContent);
  const part = (name) => root.querySelector(`[data-esu-${name}]`);
  const ui = {
    start: part('start'), launch: part('launch'), message: part('message'), steps: part('steps'),
    verify: part('verify'), verifyIntro: part('verify-intro'), sendCode: part('send-code'),
    countdown: part('countdown'), codeEntry: part('code-entry'), verifyError: part('verify-error'),
    result: part('result'), resultTitle: part('result-title'), resultText: part('result-text'),
    resultDetail: part('result-detail'), actions: part('actions'), retry: part('retry'), restart: part('restart'),
    pin: part('pin'), pinIntro: part('pin-intro'), pinError: part('pin-error'),
  };

  // FINISH and every FINISH_… event (FINISH_ONLY_WABA, FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING,
  // FINISH_OBO_MIGRATION, FINISH_GRANT_ONLY_API_ACCESS, and any Meta adds: the server decides what runs).
  const FINISH_EVENT = /^FINISH(_[A-Z0-9]+){0,8}$/;
  // The lists of ids a finish message may carry (v4 assets, several WABAs), sent on as they came.
  const ASSET_LISTS = ['waba_ids', 'ad_account_ids', 'page_ids', 'dataset_ids', 'catalog_ids', 'instagram_account_ids'];
  const MAX_ASSET_IDS = 50;
  // Meta delivers the code and the session info separately, in either order; after the code, wait
  // this long for the ids before posting the code alone (the server then finds the WABA itself).
  const GRACE_MS = 3000;
  // The callback creates the onboarding as soon as it arrives; polling before that would answer 404.
  const FIRST_POLL_MS = 1000;
  const POLL_MS = 1000;
  // While Meta rate-limits a step, the server goes on by itself; the page looks again this often.
  const WAIT_POLL_MS = 15000;
  const PIN_MISMATCH = 133005;
  const SCREENS = {
    BUSINESS_ACCOUNT_SELECTION: 'choosing your business portfolio',
    WABA_PHONE_PROFILE_PICKER: 'choosing your WhatsApp Business account',
    WHATSAPP_BUSINESS_PROFILE_SETUP: 'creating your WhatsApp Business profile',
    PHONE_NUMBER_SETUP: 'adding your phone number',
    PHONE_NUMBER_VERIFICATION: 'verifying your phone number',
    PERMISSIONS: 'reviewing the permissions',
  };
  // What went wrong, said for the person who signed up rather than for an engineer.
  const PROBLEMS = {
    exchange_code: 'Meta did not confirm your sign-up in time.',
    confirm_ids: 'Meta did not share your WhatsApp Business account with us.',
    read_waba: 'We could not read your WhatsApp Business account from Meta.',
    subscribe_webhooks: 'We could not connect your account so that messages reach us.',
    assign_system_user: 'We could not set up billing for your account.',
    share_credit_line: 'We could not set up billing for your account.',
    read_phone_number: 'We could not read your phone number from Meta.',
    register_phone: 'We could not switch on WhatsApp for your phone number.',
    sync_business_app: 'We could not start copying your WhatsApp Business app chats.',
    fetch_templates: 'We could not load your message templates.',
    request_code: 'We could not send the verification code.',
    verify_code: 'The verification code was not accepted.',
  };
  const STATES = { pending: 'Waiting', running: 'In progress', ok: 'Done', failed: 'Failed', waiting: 'Needs your code' };
  // Coming back to a sign-up (a reload, a closed tab, the link we sent) and a dropped connection.
  const RESUME_TEXT = {
    welcome: 'Welcome back: here is where your sign-up stopped.',
    following: 'Setting up your WhatsApp Business account…',
    codeAsked: 'We already asked Meta for a code. Enter it below, or ask for a new one.',
    newCode: 'Send a new code',
    stuckTitle: 'The setup was interrupted',
    stuckText: 'Our server stopped while setting up your account. Nothing is lost: try again to finish.',
    droppedTitle: 'We could not reach our server',
    droppedText: 'Your connection dropped before we could answer. Check your internet connection, then try again.',
    unreachable: 'We could not reach our server to pick up your sign-up. Check your connection, then reload the page.',
    linkRefused: 'This link to go on with your sign-up is not valid any more. Ask us for a new one, or start again.',
    reference: (id) => `Reference: onboarding ${id}.`,
  };

  let attempt = null; // one launch of the dialog and everything after it
  let countdownTimer = 0;

  const show = (element, visible) => { element.hidden = !visible; };
  const say = (text) => { ui.message.textContent = text; };
  const matching = (value, pattern) => {
    const text = typeof value === 'number' ? String(value) : value;
    return typeof text === 'string' && pattern.test(text) ? text : null;
  };
  const metaId = (value) => matching(value, /^\d{1,32}$/);
  const metaIds = (value) => (Array.isArray(value) ? value.map(metaId).filter(Boolean).slice(0, MAX_ASSET_IDS) : []);

  // The page is the same for every visitor and carries no CSRF token: the onboarding calls get one from
  // the page's session URL, asked for once, when the person first clicks (a failure is asked again later).
  let csrfToken = null;
  function sessionToken() {
    if (!csrfToken) {
      csrfToken = fetch(settings.urls.session, { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } })
        .then((response) => (response.ok ? response.json() : null))
        .then((data) => (data && typeof data.csrf_token === 'string' ? data.csrf_token : null))
        .catch(() => null);
      csrfToken.then((token) => { if (!token) csrfToken = null; });
    }
    return csrfToken;
  }

  async function send(method, url, body) {
    const options = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (method !== 'GET') {
      const token = await sessionToken();
      if (!token) return { ok: false, status: 0, data: null };
      options.headers['X-CSRFToken'] = token;
    }
    if (body !== undefined) {
      options.headers['Content-Type'] = 'application/json';
      options.body = JSON.stringify(body);
    }
    try {
      const response = await fetch(url, options);
      const data = await response.json().catch(() => null);
      return { ok: response.ok, status: response.status, data };
    } catch (error) {
      return { ok: false, status: 0, data: null };
    }
  }

  function report(kind, fields) {
    const body = JSON.stringify(Object.assign({ kind }, fields));
    // No token: the beacon is anonymous, and its JSON content type is what keeps cross-site forms out.
    const headers = { 'Content-Type': 'application/json' };
    fetch(settings.urls.events, { method: 'POST', headers, body, credentials: 'same-origin', keepalive: true })
      .catch(() => {}); // the funnel is best effort; the person's signup is not
  }

  function newRef() {
    const bytes = crypto.getRandomValues(new Uint8Array(24));
    return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  const onboardingUrl = (current, action) => settings.urls.onboardings + current.ref + (action ? `/${action}` : '');

  // -- Meta's dialog -----------------------------------------------------------------------------

  function trustedOrigin(origin) {
    if (settings.simulator_origin && origin === settings.simulator_origin) return true;
    let url;
    try {
      url = new URL(origin);
    } catch (error) {
      return false;
    }
    return url.protocol === 'https:' && url.port === ''
      && (url.hostname === 'facebook.com' || url.hostname.endsWith('.facebook.com'));
  }

  function parseSessionMessage(event) {
    if (!trustedOrigin(event.origin) || typeof event.data !== 'string') return null;
    let message;
    try {
      message = JSON.parse(event.data);
    } catch (error) {
      return null; // Facebook's frames post other, non-JSON messages too
    }
    if (!message || message.type !== 'WA_EMBEDDED_SIGNUP' || typeof message.event !== 'string') return null;
    message.data = message.data && typeof message.data === 'object' ? message.data : {};
    return message;
  }

  function onSessionMessage(event) {
    const message = parseSessionMessage(event);
    const current = attempt;
    if (!message || !current) return;
    const data = message.data;
    if (message.event.length <= 64 && FINISH_EVENT.test(message.event)) {
      if (current.session) return;
      current.session = {
        event: message.event, waba_id: metaId(data.waba_id), phone_number_id: metaId(data.phone_number_id),
        business_id: metaId(data.business_id),
      };
      ASSET_LISTS.forEach((name) => {
        const ids = metaIds(data[name]);
        if (ids.length) current.session[name] = ids;
      });
      report('finish');
      if (current.code) submit(current);
    } else if ((message.event === 'CANCEL' || message.event === 'ERROR') && !current.code && !current.left) {
      current.left = true;
      const errorCode = matching(data.error_code || data.error_id, /^[A-Za-z0-9_.-]{1,32}$/);
      let errorMessage = typeof data.error_message === 'string' ? data.error_message.trim().slice(0, 1000) : '';
      if (errorMessage || errorCode || message.event === 'ERROR') {
        errorMessage = errorMessage || 'An error occurred in the signup window.';
        const sessionId = matching(data.session_id, /^[A-Za-z0-9_.:-]{1,64}$/);
        report('error', { error_message: errorMessage, error_code: errorCode, session_id: sessionId });
        idle(`Meta reported a problem: ${errorMessage}` +
          (sessionId ? ` If you contact us, mention the reference ${sessionId}.` : ''));
      } else {
        const step = matching(data.current_step, /^[A-Z][A-Z0-9_]{0,63}$/);
        report('cancel', { current_step: step });
        idle(`You stopped while ${SCREENS[step] || 'signing up'}. Nothing was set up; start again whenever you are ready.`);
      }
    }
  }

  function launch() {
    const current = { ref: newRef(), code: null, session: null, submitted: false, left: false, grace: 0 };
    attempt = current;
    [ui.result, ui.verify, ui.pin, ui.steps].forEach((element) => show(element, false));
    ui.launch.disabled = true;
    say('Finish the steps in the Facebook window; this page follows along.');
    report('launch');
    // The popup opens now, in the click's own call stack (popup blockers allow nothing later); the
    // token is fetched beside it, and the callback waits for it.
    window.FB.login((response) => onLogin(current, response), settings.login);
    sessionToken();
  }

  function onLogin(current, response) {
    if (current !== attempt) return;
    const code = response && response.authResponse ? response.authResponse.code : null;
    if (!code) {
      if (!current.left) idle('The Facebook window closed before you finished. Start again whenever you are ready.');
      return;
    }
    current.code = code;
    if (current.session) {
      submit(current);
    } else {
      say('Meta signed you up. Finishing…');
      current.grace = setTimeout(() => submit(current), GRACE_MS);
    }
  }

  function idle(text) {
    show(ui.start, true);
    ui.launch.disabled = false;
    say(text);
  }

  // -- the onboarding ----------------------------------------------------------------------------

  function submit(current) {
    if (current.submitted || current !== attempt) return;
    current.submitted = true;
    clearTimeout(current.grace);
    const session = current.session || { event: 'FINISH' };
    show(ui.start, false);
    say('Setting up your WhatsApp Business account…');
    const body = {
      code: current.code, event: session.event, waba_id: session.waba_id || null,
      phone_number_id: session.phone_number_id || null, business_id: session.business_id || null,
      client_ref: current.ref,
    };
    ASSET_LISTS.forEach((name) => { if (session[name]) body[name] = session[name]; });
    const request = send('POST', settings.urls.callback, body);
    track(current, request, FIRST_POLL_MS).then((result) => conclude(current, result));
  }

  // Show the steps while ``request`` (a callback, retry or verification) runs; answers its result.
  async function track(current, request, firstPollMs) {
    let running = true;
    let timer = 0;
    const poll = async () => {
      const status = await send('GET', `${onboardingUrl(current)}?submitted=1`);
      if (!running || current !== attempt) return;
      if (status.status === 200) renderSteps(status.data); // 202: the callback has not made it yet
      timer = setTimeout(poll, POLL_MS);
    };
    timer = setTimeout(poll, firstPollMs);
    const result = await request;
    running = false;
    clearTimeout(timer);
    return result;
  }

  function conclude(current, result) {
    if (current !== attempt) return;
    if (result.ok && result.data && Array.isArray(result.data.steps)) {
      renderOnboarding(current, result.data);
    } else if (result.status === 0) {
      current.dropped = true; // "Try again" picks the onboarding up where the server has it
      finish(RESUME_TEXT.droppedTitle, RESUME_TEXT.droppedText, null, true);
    } else if (result.status === 409) {
      finish('This sign-up was already received', 'We are already setting it up. If you hear nothing from us, start again.', null, false);
    } else {
      finish('Something went wrong on our side', 'Please start again in a moment.', null, false);
    }
  }

  function renderSteps(summary) {
    remember(summary.resume_token);
    const visible = summary.steps.filter((step) => step.status !== 'skipped');
    const done = visible.filter((step) => step.status === 'ok').length;
    say(`Setting up your WhatsApp Business account: ${done} of ${visible.length} steps done.`);
    if (!settings.show_steps) return;
    ui.steps.replaceChildren(...visible.map((step) => {
      const item = document.createElement('li');
      const label = document.createElement('span');
      const state = document.createElement('span');
      item.dataset.status = step.status;
      item.dataset.step = step.name;
      label.textContent = step.label;
      state.className = 'esu-state';
      state.textContent = stateOf(step);
      item.append(label, ' ', state);
      return item;
    }));
    show(ui.steps, true);
  }

  function stateOf(step) {
    if (step.status === 'waiting' && step.wait_until) return 'Waiting for Meta';
    if (step.status === 'waiting' && step.error && step.error.code === PIN_MISMATCH) return 'Needs your PIN';
    return STATES[step.status] || step.status;
  }

  function renderOnboarding(current, summary) {
    renderSteps(summary);
    show(ui.verify, false);
    show(ui.pin, false);
    if (summary.status === 'completed') {
      const business = summary.business_name || 'Your business';
      const text = summary.display_phone_number
        ? `${business} can now send and receive WhatsApp messages on ${summary.display_phone_number}.`
        : `The WhatsApp Business account of ${business} is connected, without a phone number yet. `
          + 'Add one in WhatsApp Manager whenever you are ready, and tell us: we will finish setting it up.';
      say('All done.');
      forget();
      finish('You are connected', text, null, null);
    } else if (summary.status === 'awaiting_verification') {
      askForCode(current, summary);
    } else if (summary.status === 'awaiting_pin') {
      askForPin(current, summary);
    } else if (summary.status === 'rate_limited') {
      waitForMeta(current, summary);
    } else {
      const failed = summary.steps.find((step) => step.status === 'failed') || {};
      const problem = PROBLEMS[failed.name] || 'One of the setup steps did not work.';
      const advice = summary.retryable
        ? ' This is usually temporary: try again in a moment.'
        : ' You will need to go through the sign-up again.';
      // Plain words: Meta's own for the person (error_user_msg) when it sent them, else esu's for the code.
      const fromMeta = failed.error && failed.error.plain ? `${failed.error.plain} ` : '';
      say('The setup stopped.');
      finish('We could not finish setting up your account', problem + advice,
        `${fromMeta}Reference: onboarding ${summary.id}.`, summary.retryable);
    }
  }

  // retryable: true shows "Try again", false "Start again", null neither (success).
  function finish(title, text, detail, retryable) {
    show(ui.start, false);
    ui.resultTitle.textContent = title;
    ui.resultText.textContent = text;
    ui.resultDetail.textContent = detail || '';
    show(ui.resultDetail, Boolean(detail));
    show(ui.retry, retryable === true);
    show(ui.restart, retryable === false);
    show(ui.actions, retryable !== null);
    ui.result.dataset.outcome = retryable === null ? 'success' : 'failure';
    show(ui.result, true);
    ui.resultTitle.focus();
  }

  function retry() {
    const current = attempt;
    if (current.dropped) {
      reconnect(current);
      return;
    }
    show(ui.result, false);
    say('Trying again…');
    track(current, send('POST', onboardingUrl(current, 'retry')), 300).then((result) => conclude(current, result));
  }

  function restart() {
    attempt = null;
    forget();
    clearInterval(countdownTimer);
    [ui.result, ui.verify, ui.pin, ui.steps].forEach((element) => show(element, false));
    idle('');
    ui.launch.focus();
  }

  // -- an unverified number ----------------------------------------------------------------------

  function askForCode(current, summary) {
    const number = summary.display_phone_number || 'your number';
    current.number = number;
    clearInterval(countdownTimer);
    ui.sendCode.textContent = 'Send the code';
    ui.sendCode.disabled = false;
    [ui.countdown, ui.codeEntry].forEach((element) => show(element, false));
    ui.verifyIntro.textContent = `Meta needs to check that ${number} is yours. We will ask Meta to send it a 6-digit code.`;
    say('One more thing: confirm your phone number.');
    show(ui.verifyError, false);
    show(ui.verify, true);
    ui.verify.querySelector('h2').focus();
  }

  function verifyError(text) {
    ui.verifyError.textContent = text;
    show(ui.verifyError, Boolean(text));
  }

  async function sendCode() {
    const current = attempt;
    const method = ui.verify.querySelector('input[name="method"]:checked').value;
    ui.sendCode.disabled = true;
    verifyError('');
    const result = await send('POST', onboardingUrl(current, 'request-code'), { method });
    if (current !== attempt) return;
    if (!result.ok) {
      ui.sendCode.disabled = false;
      verifyError((result.data && result.data.error) || 'We could not ask Meta for a code. Try again in a moment.');
      return;
    }
    show(ui.codeEntry, true);
    ui.verify.elements.code.focus();
    startCountdown(result.data.resend_after_seconds || 60, method === 'VOICE' ? 'Meta is calling' : 'Meta sent a text message to');
  }

  function startCountdown(seconds, how) {
    const number = attempt.number || 'your number';
    const until = Date.now() + seconds * 1000;
    ui.sendCode.textContent = 'Send a new code';
    clearInterval(countdownTimer);
    const tick = () => {
      const left = Math.ceil((until - Date.now()) / 1000);
      if (left > 0) {
        ui.countdown.textContent = `${how} ${number}. You can ask for a new code in ${left} s.`;
        return;
      }
      clearInterval(countdownTimer);
      ui.sendCode.disabled = false;
      ui.countdown.textContent = 'No code yet? You can ask for a new one now.';
    };
    tick();
    show(ui.countdown, true);
    countdownTimer = setInterval(tick, 1000);
  }

  const submitButton = ui.verify.querySelector('button[type="submit"]');
  async function verifyCode(event) {
    event.preventDefault();
    const current = attempt;
    const code = ui.verify.elements.code.value.trim();
    if (!/^\d{6}$/.test(code)) {
      verifyError('Enter the 6 digits of the code Meta sent.');
      return;
    }
    verifyError('');
    submitButton.disabled = true;
    say('Checking the code…');
    const result = await track(current, send('POST', onboardingUrl(current, 'verify-code'), { code }), 300);
    submitButton.disabled = false;
    if (current !== attempt) return;
    if (result.status === 400 || result.status === 429) {
      say('One more thing: confirm your phone number.');
      verifyError(`That code did not work: ${(result.data && result.data.error) || 'check it and try again.'}`);
      return;
    }
    clearInterval(countdownTimer);
    conclude(current, result);
  }

  // -- coming back ---------------------------------------------------------------------------------
  // The widget keeps the signed resume token of the visitor's onboarding (each summary brings a fresh one),
  // never the reference it follows the onboarding by: back on the page, it trades the token for it.

  const RESUME_KEY = `esu-resume:${settings.urls.resume}`;
  let notice = false; // a word about a sign-up that could not be picked up, kept past the SDK's loading
  function remember(token) {
    if (typeof token !== 'string' || !token) return;
    try { localStorage.setItem(RESUME_KEY, token); } catch (error) { /* storage off: nothing to come back to */ }
  }
  function forget() {
    try { localStorage.removeItem(RESUME_KEY); } catch (error) { /* storage off */ }
  }
  function kept() {
    try { return localStorage.getItem(RESUME_KEY); } catch (error) { return null; }
  }

  async function resumeOnLoad() {
    // The admin's link lands here with the token in the fragment, which no server saw: keep it, then drop it
    // from the address bar.
    const fromLink = window.location.hash.startsWith('#resume=') ? window.location.hash.slice('#resume='.length) : null;
    if (fromLink) {
      history.replaceState(null, '', window.location.pathname + window.location.search);
      remember(fromLink);
    }
    const token = fromLink || kept();
    if (!token) return;
    const current = { ref: null, code: null, session: null, submitted: true, left: false, grace: 0, resumed: true };
    attempt = current;
    show(ui.start, false);
    say(RESUME_TEXT.welcome);
    const result = await send('POST', settings.urls.resume, { token });
    if (current !== attempt) return;
    if (result.ok && result.data && typeof result.data.client_ref === 'string') {
      current.ref = result.data.client_ref;
      follow(current, result.data);
      return;
    }
    attempt = null;
    if (result.status !== 0) forget(); // expired, or names nothing here: start afresh
    let text = '';
    if (result.status === 0) text = RESUME_TEXT.unreachable;
    else if (fromLink) text = (result.data && result.data.error) || RESUME_TEXT.linkRefused;
    // The button waits for the SDK as on any visit (``ready``), which leaves this notice in place.
    notice = Boolean(text);
    show(ui.start, true);
    say(text);
  }

  // Show the onboarding as the server has it, and go on from there: still running, follow it; left running
  // by a server that stopped, offer to try again; otherwise as at the end of a request.
  function follow(current, summary) {
    if (current !== attempt) return;
    if (summary.status === 'running' && summary.stuck) {
      renderSteps(summary);
      say('The setup stopped.');
      finish(RESUME_TEXT.stuckTitle, RESUME_TEXT.stuckText, RESUME_TEXT.reference(summary.id), summary.retryable);
    } else if (summary.status === 'running') {
      renderSteps(summary);
      setTimeout(async () => {
        const status = await send('GET', onboardingUrl(current));
        if (current !== attempt) return;
        if (status.ok) follow(current, status.data);
        else conclude(current, status);
      }, POLL_MS);
    } else {
      renderOnboarding(current, summary);
      if (summary.status === 'awaiting_verification') showCodeAsked(summary);
    }
  }

  // A code Meta was already asked for (before a reload): the person may enter it at once.
  function showCodeAsked(summary) {
    const asked = summary.steps.find((step) => step.name === 'request_code' && step.status === 'ok');
    if (!asked) return;
    ui.sendCode.textContent = RESUME_TEXT.newCode;
    ui.countdown.textContent = RESUME_TEXT.codeAsked;
    [ui.countdown, ui.codeEntry].forEach((element) => show(element, true));
  }

  // After a dropped connection: ask the server how the onboarding stands. A callback that never arrived is
  // sent again (the same code and reference: the server takes a code once).
  async function reconnect(current) {
    current.dropped = false;
    show(ui.result, false);
    say(RESUME_TEXT.following);
    const status = await send('GET', onboardingUrl(current));
    if (current !== attempt) return;
    if (status.ok) {
      follow(current, status.data);
    } else if (status.status === 404 && current.code && !current.resent) {
      current.resent = true;
      current.submitted = false;
      submit(current);
    } else {
      conclude(current, status);
    }
  }

  // -- inside an iframe on a client's site (esu-embed.js) ----------------------------------------

  // Tell the page around the frame how tall this page is, each time that changes, so that its iframe fits
  // the page with no scroll bar of its own. A height is nothing private: any site may hear it (the page's
  // frame-ancestors already decides which sites may frame it at all).
  function reportHeightToEmbedder() {
    if (window.parent === window || typeof ResizeObserver !== 'function') return;
    let reported = 0;
    new ResizeObserver(() => {
      const height = Math.ceil(document.documentElement.getBoundingClientRect().height);
      if (height === reported) return;
      reported = height;
      window.parent.postMessage({ type: 'esu-signup:height', height }, '*');
    }).observe(document.documentElement);
  }

  // -- a number that already has a two-step verification PIN --------------------------------------

  function askForPin(current, summary) {
    const number = summary.display_phone_number || 'Your number';
    ui.pinIntro.textContent = `${number} already has two-step verification. Enter its 6-digit PIN to switch WhatsApp on for it.`;
    ui.pin.elements.pin.value = '';
    pinError('');
    say('One more thing: your number\'s PIN.');
    show(ui.pin, true);
    ui.pin.querySelector('h2').focus();
  }

  function pinError(text) {
    ui.pinError.textContent = text;
    show(ui.pinError, Boolean(text));
  }

  const pinButton = ui.pin.querySelector('button[type="submit"]');
  async function sendPin(event) {
    event.preventDefault();
    const current = attempt;
    const pin = ui.pin.elements.pin.value.trim();
    if (!/^\d{6}$/.test(pin)) {
      pinError('Enter the 6 digits of the PIN.');
      return;
    }
    pinError('');
    pinButton.disabled = true;
    say('Switching WhatsApp on for your number…');
    const result = await track(current, send('POST', onboardingUrl(current, 'pin'), { pin }), 300);
    pinButton.disabled = false;
    if (current !== attempt) return;
    if (result.ok && result.data && result.data.status === 'awaiting_pin') {
      renderSteps(result.data);
      say('One more thing: your number\'s PIN.');
      pinError('That is not the PIN of this number. Check it and try again.');
      return;
    }
    if (result.status === 400 || result.status === 429) {
      pinError((result.data && result.data.error) || 'That did not work. Try again in a moment.');
      return;
    }
    conclude(current, result);
  }

  // -- Meta is rate-limiting us: the server goes on by itself when Meta said ------------------------

  function waitForMeta(current, summary) {
    const until = summary.waiting_until ? new Date(summary.waiting_until) : null;
    const at = until ? until.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : 'in a few minutes';
    say(`Meta asked us to slow down, so we are waiting until ${at}. Setup then goes on by itself; you can leave this page.`);
    setTimeout(async () => {
      if (current !== attempt) return;
      const status = await send('GET', onboardingUrl(current));
      if (current !== attempt) return;
      if (status.ok && status.data && status.data.status !== 'rate_limited') renderOnboarding(current, status.data);
      else waitForMeta(current, status.ok && status.data ? status.data : summary);
    }, WAIT_POLL_MS);
  }

  // -- start -------------------------------------------------------------------------------------

  ui.launch.addEventListener('click', launch);
  ui.retry.addEventListener('click', retry);
  ui.restart.addEventListener('click', restart);
  ui.sendCode.addEventListener('click', sendCode);
  ui.verify.addEventListener('submit', verifyCode);
  ui.pin.addEventListener('submit', sendPin);
  window.addEventListener('message', onSessionMessage);

  function ready() {
    ui.launch.disabled = false;
    if (!attempt && !notice) say('');
  }
  window.fbAsyncInit = () => {
    window.FB.init(settings.init);
    ready();
  };
  const sdk = document.createElement('script');
  sdk.src = settings.sdk_url;
  sdk.async = true;
  sdk.crossOrigin = 'anonymous';
  sdk.addEventListener('error', () => say('The Facebook sign-up window could not load. Check your connection or ad blocker, then reload the page.'));
  document.head.appendChild(sdk);
  report('view');
  resumeOnLoad();
  reportHeightToEmbedder();
})();
