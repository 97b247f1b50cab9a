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

  const FINISH_EVENTS = ['FINISH', 'FINISH_ONLY_WABA', 'FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING'];
  // Meta delivers the code and the session info separately, in either order; after the code, wait
  // this long for the ids before posting the code alone (the server then finds the WABA itself).
  const GRACE_MS = 3000;
  // The callback creates the onboarding as soon as it arrives; polling before that would answer 404.
  const FIRST_POLL_MS = 1000;
  const POLL_MS = 1000;
  // The words come from the page, in its language (esu/widget_text.py): ``%(name)s`` is filled in here.
  const T = settings.text;
  const t = (text, values) => text.replace(/%\((\w+)\)s/g, (whole, name) => (values && name in values ? values[name] : whole));
  const localNumber = (value) => value.toLocaleString(settings.language);

  let attempt = null; // one launch of the dialog and everything after it
  let countdownTimer = 0;

  const show = (element, visible) => { element.hidden = !visible; };
  const say = (text) => { ui.message.textContent = text; };
  const matching = (value, pattern) => {
    const text = typeof value === 'number' ? String(value) : value;
    return typeof text === 'string' && pattern.test(text) ? text : null;
  };
  const metaId = (value) => matching(value, /^\d{1,32}$/);

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
    // The page's language, so that the answers' words match the page's.
    const options = { method, credentials: 'same-origin', headers: { Accept: 'application/json', 'Accept-Language': settings.language } };
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
    if (FINISH_EVENTS.includes(message.event)) {
      if (current.session) return;
      current.session = {
        event: message.event, waba_id: metaId(data.waba_id), phone_number_id: metaId(data.phone_number_id),
        business_id: metaId(data.business_id),
      };
      report('finish');
      if (current.code) submit(current);
    } else if ((message.event === 'CANCEL' || message.event === 'ERROR') && !current.code && !current.left) {
      current.left = true;
      const errorCode = matching(data.error_code || data.error_id, /^[A-Za-z0-9_.-]{1,32}$/);
      let errorMessage = typeof data.error_message === 'string' ? data.error_message.trim().slice(0, 1000) : '';
      if (errorMessage || errorCode || message.event === 'ERROR') {
        errorMessage = errorMessage || T.dialog_error;
        const sessionId = matching(data.session_id, /^[A-Za-z0-9_.:-]{1,64}$/);
        report('error', { error_message: errorMessage, error_code: errorCode, session_id: sessionId });
        idle(t(T.meta_problem, { message: errorMessage }) +
          (sessionId ? ` ${t(T.meta_reference, { reference: sessionId })}` : ''));
      } else {
        const step = matching(data.current_step, /^[A-Z][A-Z0-9_]{0,63}$/);
        report('cancel', { current_step: step });
        idle(t(T.stopped, { screen: T.screens[step] || T.signing_up }));
      }
    }
  }

  function launch() {
    const current = { ref: newRef(), code: null, session: null, submitted: false, left: false, grace: 0 };
    attempt = current;
    [ui.result, ui.verify, ui.steps].forEach((element) => show(element, false));
    ui.launch.disabled = true;
    say(T.launched);
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
      if (!current.left) idle(T.closed);
      return;
    }
    current.code = code;
    if (current.session) {
      submit(current);
    } else {
      say(T.signed_up);
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
    say(T.setting_up);
    const request = send('POST', settings.urls.callback, {
      code: current.code, event: session.event, waba_id: session.waba_id || null,
      phone_number_id: session.phone_number_id || null, business_id: session.business_id || null,
      client_ref: current.ref,
    });
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
      finish(T.unreachable_title, T.unreachable_text, null, false);
    } else if (result.status === 409) {
      finish(T.duplicate_title, T.duplicate_text, null, false);
    } else {
      finish(T.error_title, T.error_text, null, false);
    }
  }

  function renderSteps(summary) {
    const visible = summary.steps.filter((step) => step.status !== 'skipped');
    const done = visible.filter((step) => step.status === 'ok').length;
    say(t(T.progress, { done: localNumber(done), total: localNumber(visible.length) }));
    if (!settings.show_steps) return;
    ui.steps.replaceChildren(...visible.map((step) => {
      const item = document.createElement('li');
      const label = document.createElement('span');
      const state = document.createElement('span');
      item.dataset.status = step.status;
      item.dataset.step = step.name;
      label.textContent = step.label;
      state.className = 'esu-state';
      state.textContent = T.states[step.status] || step.status;
      item.append(label, ' ', state);
      return item;
    }));
    show(ui.steps, true);
  }

  function renderOnboarding(current, summary) {
    renderSteps(summary);
    show(ui.verify, false);
    if (summary.status === 'completed') {
      const business = summary.business_name || T.your_business;
      const text = summary.display_phone_number
        ? t(T.connected_number, { business, number: summary.display_phone_number })
        : t(T.connected_waba, { business });
      say(T.done);
      finish(T.connected_title, text, null, null);
    } else if (summary.status === 'awaiting_verification') {
      askForCode(current, summary);
    } else {
      const failed = summary.steps.find((step) => step.status === 'failed') || {};
      const problem = T.problems[failed.name] || T.problem;
      const advice = ` ${summary.retryable ? T.advice_retry : T.advice_restart}`;
      // Plain words: Meta's own for the person (error_user_msg) when it sent them, else esu's for the code.
      const fromMeta = failed.error && failed.error.plain ? `${failed.error.plain} ` : '';
      say(T.stopped_setup);
      finish(T.failed_title, problem + advice, fromMeta + t(T.reference, { id: summary.id }), summary.retryable);
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
    say(T.trying_again);
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
    const number = summary.display_phone_number || T.your_number;
    current.number = number;
    clearInterval(countdownTimer);
    ui.sendCode.textContent = T.send_code;
    ui.sendCode.disabled = false;
    [ui.countdown, ui.codeEntry].forEach((element) => show(element, false));
    ui.verifyIntro.textContent = t(T.verify_intro, { number });
    say(T.confirm_number);
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
      verifyError((result.data && result.data.error) || T.request_failed);
      return;
    }
    show(ui.codeEntry, true);
    ui.verify.elements.code.focus();
    startCountdown(result.data.resend_after_seconds || 60, method === 'VOICE' ? T.sent_voice : T.sent_sms);
  }

  function startCountdown(seconds, how) {
    const number = attempt.number || T.your_number;
    const until = Date.now() + seconds * 1000;
    ui.sendCode.textContent = T.send_new_code;
    clearInterval(countdownTimer);
    const tick = () => {
      const left = Math.ceil((until - Date.now()) / 1000);
      if (left > 0) {
        ui.countdown.textContent = `${t(how, { number })} ${t(T.resend_in, { seconds: localNumber(left) })}`;
        return;
      }
      clearInterval(countdownTimer);
      ui.sendCode.disabled = false;
      ui.countdown.textContent = T.resend_now;
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
      verifyError(T.enter_digits);
      return;
    }
    verifyError('');
    submitButton.disabled = true;
    say(T.checking);
    const result = await track(current, send('POST', onboardingUrl(current, 'verify-code'), { code }), 300);
    submitButton.disabled = false;
    if (current !== attempt) return;
    if (result.status === 400 || result.status === 429) {
      say(T.confirm_number);
      verifyError(t(T.code_failed, { reason: (result.data && result.data.error) || T.check_and_retry }));
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
  sdk.addEventListener('error', () => say(T.sdk_failed));
  document.head.appendChild(sdk);
  report('view');
})();
