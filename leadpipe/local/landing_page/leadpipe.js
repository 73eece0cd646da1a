/*! leadpipe.js: sends a <form data-leadpipe> to Leadpipe, never losing the lead. No dependencies, no build
 * step. Docs: docs/browser-client.md */
(function () {
  "use strict";
  if (!window.fetch || !window.FormData || !window.URLSearchParams) return; // the plain form works

  var OUTBOX = "leadpipe:outbox:"; // one item per unsent lead: tabs never clash
  var OPTIONS = (document.currentScript || {}).dataset || {};
  function positive(value, fallback, min) { return value > 0 && !(value < min) && value < 1e5 ? +value : fallback; }
  var BACKOFF_MS = positive(OPTIONS.backoffSeconds, 0.5, 0.05) * 1e3;
  var RECHECK_MS = positive(OPTIONS.recheckSeconds, 1, 0.1) * 1e3;
  var REQUEST_TIMEOUT_MS = 10000;
  var DEFAULT_BUDGET_SECONDS = 30; // retries of one attempt; then the next visit
  var PASS = "Leadpipe-Captcha-Pass"; // a 503 after a passed captcha carries it; retries send it
  var TOKENS = ["cf-turnstile-response", "g-recaptcha-response"];
  var MAX_RECHECKS = 3; // fresh tokens per lead: a judged visitor scores the same
  var used = {}; // captcha tokens sent: each verifies once
  var MESSAGES = {
    sending: "Sending…",
    sent: "Thanks! You are on the list.",
    invalid: "Please check the highlighted fields.",
    refused: "Sorry, this could not be sent.",
    saved: "We could not reach our server. Your details are saved in this browser and will be sent when you next open this page.",
    resent: "Your earlier sign-up has now been sent.",
    recheck: "Your details are saved in this browser. Please complete the spam check again and we will send them.",
    dropped: "Your earlier sign-up could not be sent. Please fill in the form again."
  };

  // --- attribution: the first and last touch, forgotten KEEP_DAYS after the last
  var TOUCHES = "leadpipe:touches";
  var FIELDS = "utm_source utm_medium utm_campaign utm_term utm_content gclid gbraid wbraid fbclid msclkid li_fat_id ttclid".split(" ");
  var KEEP_DAYS = positive(OPTIONS.attributionDays, 90);
  var URL_OK = /^https?:\/\/[!-~]{1,2000}$/; // never what the API refuses

  function touches() {
    try {
      var kept = JSON.parse(localStorage.getItem(TOUCHES));
      if (kept.until > Date.now()) return kept;
    } catch (e) { /* none */ }
    return {};
  }
  // A visit with a UTM or click id, or from another site, is a touch.
  function remember() {
    var query = new URLSearchParams(location.search), from = document.referrer, touch = {}, found;
    FIELDS.forEach(function (name) {
      var value = (query.get(name) || "").trim();
      if ((name[0] == "u" ? /^[^\x00-\x1f\x7f\ufffe\uffff]{1,200}$/ : /^[!-~]{1,500}$/).test(value)) found = touch[name] = value;
    });
    if (URL_OK.test(from) && new URL(from).host != location.host) found = touch.referrer = from;
    if (!found) return;
    touch.landing_page = location.href.split("#")[0].slice(0, 2000);
    touch.touched_at = new Date().toISOString();
    try { localStorage.setItem(TOUCHES, JSON.stringify({ first: touches().first || touch, last: touch, until: Date.now() + KEEP_DAYS * 864e5 })); } catch (e) { /* private mode */ }
  }

  // Both touches go with the lead; the last fills its own fields unless the page set any.
  function attribute(data, form) {
    var kept = touches(), box = form.querySelector("[data-leadpipe-consent]"), added = [];
    var names = FIELDS.concat("referrer", "landing_page"), own = names.some(function (name) { return data.get(name); });
    function add(name, value) { data.set(name, value); added.push(name); }
    ["first", "last"].forEach(function (which) { // known keys only
      names.concat("touched_at").forEach(function (name) {
        var value = (kept[which] || {})[name];
        if (!value) return;
        add(which + "_touch[" + name + "]", value);
        if (which == "last" && !own && name != "touched_at") add(name, value);
      });
    });
    // Attribution never costs the lead: longest out first while near the API's 16 KiB (a token may change).
    while (("" + new URLSearchParams(data)).length > 14336 && added.length) data.delete(added.sort(function (a, b) { return data.get(a).length - data.get(b).length; }).pop());
    if (!box) return;
    // Consent evidence on the box: text shown, purposes, page; the API dates it, drops purposes unticked.
    function declared(suffix) { return box.getAttribute("data-leadpipe-consent" + suffix); }
    var consent = { consent_text_id: declared(""), consent_text_version: declared("-version"), consent_text_sha256: declared("-sha256"), consent_purposes: declared("-purposes"), consent_page: location.origin + location.pathname };
    for (var field in consent) if (consent[field] && !data.get(field)) data.set(field, consent[field]);
  }

  function newKey() {
    if (crypto.randomUUID) return crypto.randomUUID();
    // randomUUID needs a secure context; any 128 random bits make a key
    return [].map.call(crypto.getRandomValues(new Uint8Array(16)), function (x) { return (x + 256).toString(16).slice(1); }).join("");
  }

  // --- the outbox: a lead is stored before its first request, removed once answered
  function store(entry) {
    try { localStorage.setItem(OUTBOX + entry.key, JSON.stringify(entry)); } catch (e) { /* private mode */ }
  }
  function load(key) {
    try { return JSON.parse(localStorage.getItem(OUTBOX + key)); } catch (e) { return null; }
  }
  function forget(key) {
    try { localStorage.removeItem(OUTBOX + key); } catch (e) { /* nothing stored */ }
  }
  function unsent() {
    var entries = [];
    try {
      for (var i = 0; i < localStorage.length; i++) {
        var name = localStorage.key(i);
        if (name && name.indexOf(OUTBOX) === 0) entries.push(load(name.slice(OUTBOX.length)));
      }
    } catch (e) { /* storage disabled */ }
    return entries.filter(Boolean).sort(function (a, b) { return a.savedAt - b.savedAt; });
  }

  // One tab at a time sends a lead; without Web Locks the key still dedupes.
  function exclusively(key, wait, work) {
    if (!navigator.locks) return work();
    return navigator.locks.request("leadpipe:" + key, { ifAvailable: !wait }, function (lock) {
      return lock ? work() : { status: -1 };
    });
  }

  // --- one lead to the API: retried on network errors, 408, 429 and 5xx until `deadline`
  function retryable(status) {
    return status === 0 || status === 408 || status === 429 || status >= 500;
  }

  function retryAfterMs(value) {
    if (!value) return 0;
    var seconds = Number(value);
    var ms = isNaN(seconds) ? Date.parse(value) - Date.now() : seconds * 1000; // delta-seconds or HTTP-date
    return isNaN(ms) || ms < 0 ? 0 : ms;
  }

  // --- captcha tokens: single-use; a lead whose token was spent or expired takes a fresh one
  function spend(body, key) { // true unless a token went out before with another lead
    var fields = new URLSearchParams(body);
    return TOKENS.reduce(function (fresh, name) {
      var token = fields.get(name);
      if (!token) return fresh;
      fresh = fresh && (!used[token] || used[token] === key);
      used[token] = used[token] || key;
      return fresh;
    }, true);
  }
  function withFreshToken(body) { // the body with an unsent token of this page's widget, or null
    var fields = new URLSearchParams(body);
    var inputs = document.querySelectorAll("form[data-leadpipe] [name]");
    for (var i = 0; i < inputs.length; i++) {
      var name = inputs[i].name, token = inputs[i].value;
      if (TOKENS.indexOf(name) >= 0 && token && !used[token]) {
        fields.set(name, token);
        return fields.toString();
      }
    }
    return null;
  }
  function withoutTokens(body) { // the lead itself: a new token keeps the key
    var fields = new URLSearchParams(body);
    TOKENS.forEach(function (name) { fields.delete(name); });
    return fields.toString();
  }
  // A spent or expired token, or none on a retried lead, is worth a fresh one; other refusals are final.
  function needsToken(answer, tried) {
    var code = answer.json && answer.json.error && answer.json.error.code;
    return (answer.status === 403 && code === "captcha_expired") || (tried && answer.status === 400 && code === "captcha_missing");
  }

  function post(entry) {
    var abort = new AbortController();
    var timer = setTimeout(function () { abort.abort(); }, REQUEST_TIMEOUT_MS);
    var headers = { "Content-Type": "application/x-www-form-urlencoded", "Idempotency-Key": entry.key };
    if (entry.pass) headers[PASS] = entry.pass;
    spend(entry.body, entry.key);
    return fetch(entry.url, {
      method: "POST",
      headers: headers,
      body: entry.body,
      credentials: "omit",
      signal: abort.signal
    }).then(function (response) {
      return response.text().then(function (text) {
        var json = null;
        try { json = JSON.parse(text); } catch (e) { /* not JSON */ }
        return { status: response.status, retryAfter: response.headers.get("Retry-After"), pass: response.headers.get(PASS), json: json };
      });
    }, function () {
      return { status: 0 }; // offline, timed out or blocked by CORS
    }).then(function (answer) {
      clearTimeout(timer);
      return answer;
    });
  }

  // `resent`: from the outbox, maybe saved before the widget's token.
  function deliver(entry, deadline, onRetry, resent) {
    var attempt = 0;
    function next() {
      entry.posts = (entry.posts || 0) + 1;
      store(entry);
      return post(entry).then(function (answer) {
        if (answer.pass) {
          entry.pass = answer.pass;
          store(entry); // the next visit sends the pass, not a spent token
        }
        if (needsToken(answer, resent || entry.posts > 1) && (entry.rechecks = (entry.rechecks || 0) + 1) <= MAX_RECHECKS) {
          // Spent, expired or missing, not wrong: never forget the lead for it.
          var body = withFreshToken(entry.body);
          entry.stale = !body;
          if (body) entry.body = body;
          store(entry);
          if (body) return next();
          answer.stale = true;
        }
        if (!retryable(answer.status)) return answer;
        // Full jitter spreads throttled pages; Retry-After is a floor.
        var backoff = Math.random() * BACKOFF_MS * Math.min(16, Math.pow(2, attempt++));
        var wait = retryAfterMs(answer.retryAfter) + backoff;
        if (Date.now() + wait > deadline) return answer;
        if (onRetry) onRetry(answer, wait);
        return new Promise(function (resolve) { setTimeout(resolve, wait); }).then(next);
      });
    }
    return next();
  }

  // Sends `entry` (under its lock); it stays in the outbox while it may still go through.
  function send(entry, deadline, wait, onRetry, resent) {
    return exclusively(entry.key, wait, function () {
      var current = load(entry.key);
      if (!current) return { status: 200, json: null, earlier: true }; // another tab delivered it
      if (current.stale) {
        var body = withFreshToken(current.body);
        if (!body) return { status: 403, stale: true }; // still no fresh token on this page
        current.body = body;
        current.stale = false;
      }
      return deliver(current, deadline, onRetry, resent).then(function (answer) {
        if (!retryable(answer.status) && !answer.stale) forget(entry.key);
        return answer;
      });
    });
  }

  function emit(target, name, detail) {
    target.dispatchEvent(new CustomEvent("leadpipe:" + name, { bubbles: true, detail: detail }));
  }

  // A lead with a spent token waits for the widget's next one.
  var watching = 0;
  function recheck(form, key) {
    if (form) statusSlot(form).textContent = message(form, "recheck");
    emit(form || document, "recheck", { key: key });
    watching = watching || setInterval(function () {
      if (!unsent().some(function (entry) { return entry.stale && withFreshToken(entry.body); })) return;
      clearInterval(watching);
      watching = 0;
      flush();
    }, RECHECK_MS);
  }

  // --- the form
  function message(form, state) {
    return form.getAttribute("data-leadpipe-message-" + state) || MESSAGES[state];
  }

  function statusSlot(form) {
    var slot = form.querySelector("[data-leadpipe-status]");
    if (!slot) {
      slot = document.createElement("p");
      slot.setAttribute("data-leadpipe-status", "");
      slot.setAttribute("role", "status");
      form.appendChild(slot);
    }
    return slot;
  }

  function clearErrors(form) {
    [].forEach.call(form.querySelectorAll("[data-error-for]"), function (slot) { slot.textContent = ""; });
    [].forEach.call(form.querySelectorAll("[aria-invalid]"), function (input) { input.removeAttribute("aria-invalid"); });
  }

  function showFieldErrors(form, fields) {
    var unplaced = [];
    fields.forEach(function (error) {
      var input = form.elements.namedItem(error.field);
      var slot = [].filter.call(form.querySelectorAll("[data-error-for]"), function (el) {
        return el.getAttribute("data-error-for") === error.field;
      })[0];
      if (!slot && input && input.insertAdjacentElement) {
        slot = document.createElement("p");
        slot.setAttribute("data-error-for", error.field);
        input.insertAdjacentElement("afterend", slot);
      }
      if (input && input.setAttribute) input.setAttribute("aria-invalid", "true");
      if (slot) slot.textContent = error.message;
      else unplaced.push(error.message);
    });
    return unplaced;
  }

  function leadFrom(form, submitter) {
    var data = new FormData(form);
    if (submitter && submitter.name) data.append(submitter.name, submitter.value);
    var redirect = data.get("_redirect");
    data.delete("_redirect"); // only plain posts are redirected
    attribute(data, form);
    var url = new URL(form.getAttribute("action") || "", location.href).href; // form.action may be a field
    return { url: url, body: new URLSearchParams(data).toString(), redirect: redirect ? String(redirect) : null };
  }

  function enhance(form) {
    var busy = false;
    var last = null; // the last lead sent: the same content keeps its key
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (busy) return; // a second click while sending never sends twice
      var lead = leadFrom(form, event.submitter);
      var details = withoutTokens(lead.body);
      function sameLead(e) { return e.url === lead.url && withoutTokens(e.body) === details; }
      var queued = unsent().filter(sameLead)[0];
      var same = last && sameLead(last) ? last : queued;
      var key = same ? same.key : newKey();
      // An earlier try's captcha pass stays; the body takes the current token.
      var entry = Object.assign(load(key) || {}, { key: key, url: lead.url, body: lead.body, redirect: lead.redirect, savedAt: Date.now() });
      // A token already sent (by an outbox lead) would be refused: wait for the next one.
      entry.stale = !spend(lead.body, key) && !entry.pass;
      last = entry;
      busy = true;
      form.setAttribute("aria-busy", "true");
      clearErrors(form);
      var status = statusSlot(form);
      status.textContent = message(form, "sending");
      store(entry);
      var budget = positive(form.getAttribute("data-leadpipe-retry-seconds"), DEFAULT_BUDGET_SECONDS) * 1e3;
      send(entry, Date.now() + budget, true, function (answer, wait) {
        emit(form, "retry", { status: answer.status, wait: wait });
      }).catch(function () {
        return { status: 0 }; // the lead is still in the outbox
      }).then(function (answer) {
        busy = false;
        form.removeAttribute("aria-busy");
        var error = answer.json && answer.json.error;
        if (answer.status >= 200 && answer.status < 300) {
          emit(form, "sent", { key: entry.key, leadId: answer.json && answer.json.lead_id });
          if (entry.redirect) { window.location.assign(entry.redirect); return; }
          status.textContent = message(form, "sent");
          form.reset();
        } else if (answer.stale) {
          recheck(form, entry.key);
        } else if (retryable(answer.status)) {
          status.textContent = message(form, "saved");
          emit(form, "saved", { key: entry.key, status: answer.status });
        } else {
          var unplaced = showFieldErrors(form, (error && error.fields) || []);
          status.textContent = unplaced.length ? unplaced.join(" ") : answer.status === 422 ? message(form, "invalid") : (error && error.message) || message(form, "refused");
          emit(form, "invalid", { status: answer.status, error: error });
        }
      });
    });
  }

  // Leads left by an earlier visit go out now, one at a time.
  function flush() {
    var entries = unsent();
    return entries.reduce(function (previous, entry) {
      return previous.then(function () {
        return send(entry, Date.now() + DEFAULT_BUDGET_SECONDS * 1000, false, null, true).then(function (answer) {
          var form = document.querySelector("form[data-leadpipe]");
          if (answer.stale) recheck(form, entry.key);
          if (answer.status >= 200 && answer.status < 300 && !answer.earlier) {
            emit(document, "resent", { key: entry.key });
            if (form) statusSlot(form).textContent = message(form, "resent");
          }
          if (answer.status >= 400 && !retryable(answer.status) && !answer.stale) {
            // Refused for good: the visitor is told.
            emit(form || document, "dropped", { key: entry.key, status: answer.status, error: answer.json && answer.json.error });
            if (form) statusSlot(form).textContent = message(form, "dropped");
          }
        });
      });
    }, Promise.resolve());
  }

  function start() {
    remember();
    [].forEach.call(document.querySelectorAll("form[data-leadpipe]"), enhance);
    window.addEventListener("online", flush);
    window.Leadpipe = { flush: flush, pending: function () { return unsent().length; } };
    flush();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
