// dml console: refreshes live regions, nothing else. Every page works
// without this script. A region is an element with data-live="URL": the
// URL answers the region's HTML, with an ETag; the region is fetched again
// every few seconds with If-None-Match and replaced only when it changed
// and when no field inside it is being edited, so a half-written comment
// is never lost.
(function () {
  "use strict";
  var INTERVAL = 5000;
  function busy(el) {
    var a = document.activeElement;
    if (a && el.contains(a) && /^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName)) { return true; }
    var fields = el.querySelectorAll("textarea, input[type=text]");
    for (var i = 0; i < fields.length; i++) {
      if (fields[i].value !== fields[i].defaultValue) { return true; }
    }
    return false;
  }
  function refresh(el) {
    if (document.hidden || busy(el)) { return; }
    var headers = { "X-DML-Live": "1" };
    if (el.dataset.etag) { headers["If-None-Match"] = el.dataset.etag; }
    fetch(el.dataset.live, { headers: headers, credentials: "same-origin", redirect: "error" }).then(function (res) {
      if (res.status === 401) {
        // The session ended: the page itself goes to the sign-in page.
        window.location.reload();
        return null;
      }
      if (res.status !== 200) { return null; }
      el.dataset.etag = res.headers.get("ETag") || "";
      return res.text();
    }).then(function (html) {
      if (html !== null && html !== undefined && !busy(el)) {
        el.innerHTML = html;
        el.dispatchEvent(new CustomEvent("dml:refreshed", { bubbles: true }));
      }
    }).catch(function () { /* the next round retries */ });
  }
  function start() {
    var regions = document.querySelectorAll("[data-live]");
    Array.prototype.forEach.call(regions, function (el) {
      el.dataset.etag = el.dataset.etag || "";
      setInterval(function () { refresh(el); }, INTERVAL);
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
// After a single sign-on callback, the "Continue" link is followed at
// once: a navigation from this page is same-site, so the browser sends the
// session cookie it would not send on a redirect from the provider.
(function () {
  "use strict";
  var a = document.querySelector("a[data-follow]");
  if (a) { window.location.replace(a.href); }
})();
