/* Shows an esu signup page inside another site: the site pastes, where the signup should appear,

     <div data-esu-signup-embed="https://esu.example/signup/shop"><a href="…">Connect WhatsApp</a></div>
     <script src="https://esu.example/static/esu-embed.js" async></script>

   and this script replaces each such placeholder with the page in an iframe, as tall as the page inside
   says it is (esu-signup.js posts its height). Only pages of the origin this script came from are shown,
   and only their frames' messages are heard. The page itself decides which sites may frame it (the
   admin's list of sites; its frame-ancestors). No inline style: it runs under a strict host policy too. */
(() => {
  'use strict';
  const script = document.currentScript;
  if (!script) return;
  const esuOrigin = new URL(script.src).origin;
  const HEIGHT = 'esu-signup:height';
  const MAX_HEIGHT = 20000; // a page that says more is wrong; the frame then scrolls
  const frames = [];

  function mount(placeholder) {
    let address;
    try {
      address = new URL(placeholder.dataset.esuSignupEmbed, script.src);
    } catch (error) {
      return;
    }
    if (address.origin !== esuOrigin || placeholder.dataset.esuMounted) return;
    placeholder.dataset.esuMounted = 'true';
    const frame = document.createElement('iframe');
    frame.src = address.href;
    frame.title = placeholder.dataset.esuTitle || 'Connect your WhatsApp Business number';
    frame.style.display = 'block';
    frame.style.width = '100%';
    frame.style.border = '0';
    frame.style.height = '480px'; // until the page says how tall it is
    placeholder.replaceChildren(frame);
    frames.push(frame);
  }

  function mountAll() {
    document.querySelectorAll('[data-esu-signup-embed]').forEach(mount);
  }

  window.addEventListener('message', (event) => {
    if (event.origin !== esuOrigin) return;
    const frame = frames.find((candidate) => candidate.contentWindow === event.source);
    const data = event.data;
    if (!frame || !data || data.type !== HEIGHT || !Number.isFinite(data.height)) return;
    frame.style.height = `${Math.min(Math.max(Math.ceil(data.height), 0), MAX_HEIGHT)}px`;
  });

  mountAll();
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', mountAll);
})();
