/* Every page: the header's menu button. Loaded in <head> so the page is styled for it
   (html.ga-js) before the first paint; the rest waits for the document.

   On phones (max-width 760px) and wherever the links do not fit in one header row (measured
   here), the header gets class ga-collapsed: the links, the account link and the
   log-out button sit in a panel that the menu button opens. A disclosure: the button says
   aria-expanded; Escape closes the panel and gives the focus back to the button; a click
   or the focus going elsewhere closes it too. Without script the links stay in the header. */
(function () {
  "use strict";
  document.documentElement.classList.add("ga-js");

  function init() {
    var header = document.querySelector(".ga-header");
    var button = header && header.querySelector(".ga-menu-button");
    var panel = button && document.getElementById(button.getAttribute("aria-controls"));
    if (!panel) { return; }
    var nav = panel.querySelector(".ga-nav");
    var brand = header.querySelector(".ga-brand");
    var phone = window.matchMedia("(max-width: 760px)");

    function setOpen(open) {
      button.setAttribute("aria-expanded", open ? "true" : "false");
      panel.classList.toggle("ga-open", open);
    }

    function isOpen() { return button.getAttribute("aria-expanded") === "true"; }

    // Collapse when the links would be clipped or push the brand out (long English labels,
    // an admin's ten links), not only below the phone breakpoint.
    function fit() {
      var open = isOpen();
      header.classList.remove("ga-collapsed");
      var collapsed = phone.matches ||
        (nav && nav.scrollWidth > nav.clientWidth + 1) ||
        (brand && brand.scrollWidth > brand.clientWidth + 1) ||
        header.scrollWidth > header.clientWidth + 1;
      header.classList.toggle("ga-collapsed", collapsed);
      setOpen(collapsed && open);
    }

    button.addEventListener("click", function () { setOpen(!isOpen()); });
    header.addEventListener("keydown", function (e) {
      if ((e.key === "Escape" || e.key === "Esc") && isOpen()) {
        setOpen(false);
        button.focus();
      }
    });
    document.addEventListener("click", function (e) {
      if (isOpen() && !header.contains(e.target)) { setOpen(false); }
    });
    header.addEventListener("focusout", function (e) {
      if (isOpen() && e.relatedTarget && !header.contains(e.relatedTarget)) { setOpen(false); }
    });

    var pending = false;
    window.addEventListener("resize", function () {
      if (pending) { return; }
      pending = true;
      window.requestAnimationFrame(function () { pending = false; fit(); });
    });
    fit();
    if (document.fonts && document.fonts.ready) { document.fonts.ready.then(fit); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
