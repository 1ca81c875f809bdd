// Every HTMX request carries the CSRF token from the page's <meta> tag (Flask-WTF checks X-CSRFToken).
document.addEventListener("htmx:configRequest", (event) => {
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) {
    event.detail.headers["X-CSRFToken"] = meta.content;
  }
});

// Close any open dropdown <details> when clicking elsewhere.
document.addEventListener("click", (event) => {
  document.querySelectorAll("details.dropdown[open]").forEach((menu) => {
    if (!menu.contains(event.target)) {
      menu.removeAttribute("open");
    }
  });
});

// The phone menu: the button opens and closes the main links; Escape or a click elsewhere closes them.
function setMainMenu(button, open) {
  button.setAttribute("aria-expanded", String(open));
  document.getElementById(button.getAttribute("aria-controls")).classList.toggle("is-open", open);
}

document.addEventListener("click", (event) => {
  const button = document.querySelector(".menu-toggle");
  if (!button) {
    return;
  }
  if (button.contains(event.target)) {
    setMainMenu(button, button.getAttribute("aria-expanded") !== "true");
  } else if (!document.getElementById("mainnav").contains(event.target)) {
    setMainMenu(button, false);
  }
});

document.addEventListener("keydown", (event) => {
  const button = document.querySelector(".menu-toggle[aria-expanded='true']");
  if (event.key === "Escape" && button) {
    setMainMenu(button, false);
    button.focus();
  }
});
