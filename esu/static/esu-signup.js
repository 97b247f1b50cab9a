/* The Embedded Signup widget (templates/signup/_widget.html): loads the Facebook SDK, opens Meta's
   dialog, reports the funnel, hands the code to the page's callback, follows the onboarding step by
   step and asks for the verification code when Meta left the number unverified.
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
    [ui.result, ui.verify, ui.steps].forEach((element) => show(element, false));
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
      const status = await send('GET', onboardingUrl(current));
      if (!running || current !== attempt) return;
      if (status.ok) renderSteps(status.data);
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
      finish('We could not reach our server', 'Check your internet connection, then start again.', null, false);
    } else if (result.status === 409) {
      finish('This sign-up was already received', 'We are already setting it up. If you hear nothing from us, start again.', null, false);
    } else {
      finish('Something went wrong on our side', 'Please start again in a moment.', null, false);
    }
  }

  function renderSteps(summary) {
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
      state.textContent = STATES[step.status] || step.status;
      item.append(label, ' ', state);
      return item;
    }));
    show(ui.steps, true);
  }

  function renderOnboarding(current, summary) {
    renderSteps(summary);
    show(ui.verify, false);
    if (summary.status === 'completed') {
      const business = summary.business_name || 'Your business';
      const text = summary.display_phone_number
        ? `${business} can now send and receive WhatsApp messages on ${summary.display_phone_number}.`
        : `The WhatsApp Business account of ${business} is connected, without a phone number yet. `
          + 'Add one in WhatsApp Manager whenever you are ready, and tell us: we will finish setting it up.';
      say('All done.');
      finish('You are connected', text, null, null);
    } else if (summary.status === 'awaiting_verification') {
      askForCode(current, summary);
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
    show(ui.result, false);
    say('Trying again…');
    track(current, send('POST', onboardingUrl(current, 'retry')), 300).then((result) => conclude(current, result));
  }

  function restart() {
    attempt = null;
    clearInterval(countdownTimer);
    [ui.result, ui.verify, ui.steps].forEach((element) => show(element, false));
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

  // -- start -------------------------------------------------------------------------------------

  ui.launch.addEventListener('click', launch);
  ui.retry.addEventListener('click', retry);
  ui.restart.addEventListener('click', restart);
  ui.sendCode.addEventListener('click', sendCode);
  ui.verify.addEventListener('submit', verifyCode);
  window.addEventListener('message', onSessionMessage);

  function ready() {
    ui.launch.disabled = false;
    say('');
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
})();
