/* Stand-in for Meta's JavaScript SDK (connect.facebook.net/…/sdk.js), served by the simulator.
   FB.login opens the simulator's Embedded Signup dialog in a popup; the dialog posts the session
   message to the page itself and tells this script the code (or that there is none) through a
   message of its own type, which only the popup this script opened, from this script's origin, may send. */
(() => {
  'use strict';
  const script = document.currentScript;
  // Meta serves one SDK per locale (…/id_ID/sdk.js) and its dialogs speak it; so does this one.
  const localeInPath = new URL(script.src).pathname.match(/\/([a-z]{2}_[A-Z]{2})\/sdk\.js$/);
  const locale = localeInPath ? localeInPath[1] : 'en_US';
  const dialogUrl = new URL(localeInPath ? '../dialog/oauth' : 'dialog/oauth', script.src);
  const dialogOrigin = dialogUrl.origin;
  const LOGIN_RESULT = 'ESU_SIMULATOR_LOGIN_RESULT';
  let settings = null;
  let popup = null;
  let pending = null;
  let watcher = 0;

  function answer(code) {
    const callback = pending;
    pending = null;
    clearInterval(watcher);
    if (popup && !popup.closed) popup.close();
    popup = null;
    if (callback) callback(code ? { authResponse: { code }, status: 'connected' } : { authResponse: null, status: 'unknown' });
  }

  const FB = {
    init(options) {
      if (!options || !options.appId || !options.version) throw new Error('FB.init needs appId and version');
      settings = Object.assign({}, options);
    },
    getLoginStatus(callback) {
      callback({ status: 'unknown', authResponse: null });
    },
    login(callback, options) {
      if (!settings) throw new Error('FB.init has not been called');
      const login = options || {};
      const url = new URL(dialogUrl);
      url.searchParams.set('client_id', settings.appId);
      url.searchParams.set('version', settings.version);
      url.searchParams.set('origin', window.location.origin);
      url.searchParams.set('locale', locale);
      ['config_id', 'response_type', 'override_default_response_type'].forEach((name) => {
        if (name in login) url.searchParams.set(name, String(login[name]));
      });
      url.searchParams.set('extras', JSON.stringify(login.extras || {}));
      if (pending) answer(null); // a second login replaces the first, as a closed dialog would
      pending = callback;
      popup = window.open(url.href, 'esu_meta_dialog', 'popup,width=560,height=760');
      if (!popup) {
        answer(null);
        return;
      }
      // Closing the dialog without finishing is a cancel: the callback gets no authResponse.
      watcher = setInterval(() => {
        if (popup && popup.closed) answer(null);
      }, 400);
    },
  };

  window.addEventListener('message', (event) => {
    if (event.origin !== dialogOrigin || !popup || event.source !== popup || typeof event.data !== 'string') return;
    let message;
    try {
      message = JSON.parse(event.data);
    } catch (error) {
      return;
    }
    if (message && message.type === LOGIN_RESULT) answer(typeof message.code === 'string' ? message.code : null);
  });

  window.FB = FB;
  if (typeof window.fbAsyncInit === 'function') window.fbAsyncInit();
})();
