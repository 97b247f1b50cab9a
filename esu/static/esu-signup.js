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
    [ui.result, ui.verify, ui.pin, ui.steps].forEach((element) => show(element, false));
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
      finish(T.dropped_title, T.dropped_text, null, true);
    } else if (result.status === 409) {
      followTaken(current);
    } else {
      finish(T.error_title, T.error_text, null, false);
    }
  }

  function renderSteps(summary) {
    remember(summary.resume_token);
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
      state.textContent = stateOf(step);
      item.append(label, ' ', state);
      return item;
    }));
    show(ui.steps, true);
  }

  function stateOf(step) {
    if (step.status === 'waiting' && step.wait_until) return T.states.waiting_meta;
    if (step.status === 'waiting' && step.error && step.error.code === PIN_MISMATCH) return T.states.needs_pin;
    return T.states[step.status] || step.status;
  }

  function renderOnboarding(current, summary) {
    renderSteps(summary);
    show(ui.verify, false);
    show(ui.pin, false);
    if (summary.status === 'completed') {
      const business = summary.business_name || T.your_business;
      const text = summary.display_phone_number
        ? t(T.connected_number, { business, number: summary.display_phone_number })
        : t(T.connected_waba, { business });
      say(T.done);
      forget();
      finish(T.connected_title, text, null, null);
    } else if (summary.status === 'awaiting_verification') {
      askForCode(current, summary);
    } else if (summary.status === 'awaiting_pin') {
      askForPin(current, summary);
    } else if (summary.status === 'rate_limited') {
      waitForMeta(current, summary);
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
    if (current.dropped) {
      reconnect(current);
      return;
    }
    show(ui.result, false);
    say(T.trying_again);
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
    say(T.resume_welcome);
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
    if (result.status === 0) text = T.resume_unreachable;
    else if (fromLink) text = (result.data && result.data.error) || T.link_refused;
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
      say(T.stopped_setup);
      finish(T.stuck_title, T.stuck_text, t(T.reference, { id: summary.id }), summary.retryable);
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
    ui.sendCode.textContent = T.send_new_code;
    ui.countdown.textContent = T.code_asked;
    [ui.countdown, ui.codeEntry].forEach((element) => show(element, true));
  }

  // esu already has this code (a callback sent again after a lost answer, which the first one beat) or the
  // onboarding has moved on: show it as the server has it. Only when it is not this browser's, say so.
  async function followTaken(current) {
    const status = await send('GET', onboardingUrl(current));
    if (current !== attempt) return;
    if (status.ok) follow(current, status.data);
    else finish(T.duplicate_title, T.duplicate_text, null, false);
  }

  // After a dropped connection: ask the server how the onboarding stands. A callback that never arrived is
  // sent again (the same code and reference: the server takes a code once).
  async function reconnect(current) {
    current.dropped = false;
    show(ui.result, false);
    say(T.setting_up);
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
    // The number Meta refused our PIN for: another WABA's, with several.
    const number = summary.pin_display_phone_number || summary.display_phone_number || T.your_number_title;
    ui.pinIntro.textContent = t(T.pin_intro, { number });
    ui.pin.elements.pin.value = '';
    pinError('');
    say(T.pin_asked);
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
      pinError(T.pin_digits);
      return;
    }
    pinError('');
    pinButton.disabled = true;
    say(T.pin_switching);
    const result = await track(current, send('POST', onboardingUrl(current, 'pin'), { pin }), 300);
    pinButton.disabled = false;
    if (current !== attempt) return;
    if (result.ok && result.data && result.data.status === 'awaiting_pin') {
      renderSteps(result.data);
      say(T.pin_asked);
      pinError(T.pin_wrong);
      return;
    }
    if (result.status === 400 || result.status === 429) {
      pinError((result.data && result.data.error) || T.pin_failed);
      return;
    }
    conclude(current, result);
  }

  // -- Meta is rate-limiting us: the server goes on by itself when Meta said ------------------------

  function waitForMeta(current, summary) {
    const until = summary.waiting_until ? new Date(summary.waiting_until) : null;
    say(until
      ? t(T.waiting_until, { time: until.toLocaleTimeString(settings.language, { hour: '2-digit', minute: '2-digit' }) })
      : T.waiting_soon);
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
  sdk.addEventListener('error', () => say(T.sdk_failed));
  document.head.appendChild(sdk);
  report('view');
  resumeOnLoad();
  reportHeightToEmbedder();
})();
