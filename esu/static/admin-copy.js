/* Admin: a button[data-copy="<input id>"] copies that input's text to the clipboard, and says so in the
   words its [data-copied] element carries (data-done, data-failed: translated by the template). */
(() => {
  'use strict';
  document.querySelectorAll('button[data-copy]').forEach((button) => {
    const input = document.getElementById(button.dataset.copy);
    const said = button.parentElement.querySelector('[data-copied]');
    if (!input) return;
    button.addEventListener('click', async () => {
      input.select();
      let copied = false;
      try {
        await navigator.clipboard.writeText(input.value);
        copied = true;
      } catch (error) {
        copied = document.execCommand && document.execCommand('copy');
      }
      if (said) said.textContent = copied ? said.dataset.done : said.dataset.failed;
    });
  });
})();
