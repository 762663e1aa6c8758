// facegate console: progressive touches only; every page works without this script.
// A form sends once: its buttons are disabled after the first submit (a verdict or an
// approval must not be posted twice by a double click).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || form.method.toLowerCase() !== "post") return;
  if (form.dataset.sent) { event.preventDefault(); return; }
  form.dataset.sent = "1";
  // Disable after the browser has read which button was pressed (name=verdict value=...).
  setTimeout(() => form.querySelectorAll("button").forEach((b) => { b.disabled = true; }), 0);
});
// Coming back to a page (history) makes its forms usable again.
window.addEventListener("pageshow", () => {
  document.querySelectorAll("form[data-sent]").forEach((form) => {
    delete form.dataset.sent;
    form.querySelectorAll("button").forEach((b) => { b.disabled = false; });
  });
});
