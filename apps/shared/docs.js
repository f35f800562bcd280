// Served on /docs (Swagger UI) and /redoc (ReDoc): names the controls these widgets render without an
// accessible name, and gives their nested menus the role their items need, whenever they render them
// (operations open and close, responses arrive), so a screen reader announces what each one is (axe-core's
// button-name, select-name, aria-required-parent and list rules).
"use strict";

(() => {
  /** [selector, name or a function of the element giving it] for the widgets' unnamed controls */
  const NAMES = [
    [".copy-to-clipboard > button", "Copy to clipboard"],  // Swagger UI: the curl command, a response body
    ["select.dropdown-select", "Content type"],            // ReDoc: the media type of a body or a response
    [".modal-ux .close-modal", "Close"],                   // Swagger UI: the Authorize dialog's cross
    // Swagger UI: a boolean or enum parameter's value, named by its parameter (text inputs have a placeholder)
    ["tr[data-param-name] select", (el) => el.closest("tr").dataset.paramName],
  ];

  /** [selector, role] for lists the widgets leave without the role their items need */
  const ROLES = [
    // ReDoc: a tag's operations are a plain <ul> of role=menuitem entries inside the side menu (a menuitem
    // must be owned by a menu: each is a submenu)
    ["li[role=menuitem] > ul:not([role])", "menu"],
    // ReDoc: the search results, menu items in a plain <div>
    ["[data-role='search:results']:not([role])", "menu"],
  ];

  /** scrollable blocks a keyboard user must be able to reach (Swagger UI: a long response body) */
  const SCROLLABLE = [".highlight-code > .microlight"];

  function hasName(el) {
    return Boolean(el.getAttribute("aria-label") || el.getAttribute("aria-labelledby") || el.title
      || (el.labels && el.labels.length) || (el.tagName === "BUTTON" && el.textContent.trim()));
  }

  function nameControls(root) {
    for (const [selector, name] of NAMES) {
      for (const el of root.querySelectorAll(selector)) {
        if (!hasName(el)) el.setAttribute("aria-label", typeof name === "function" ? name(el) : name);
      }
    }
    for (const el of root.querySelectorAll(SCROLLABLE.join(","))) {
      if (!el.hasAttribute("tabindex")) el.setAttribute("tabindex", "0");
    }
    for (const [selector, role] of ROLES) {
      for (const el of root.querySelectorAll(selector)) el.setAttribute("role", role);
    }
  }

  nameControls(document);
  new MutationObserver(() => nameControls(document)).observe(document.body, {childList: true, subtree: true});
})();
