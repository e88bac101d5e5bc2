// The fact-checkers' page. It calls the public /v1 API of the service that serves it, and nothing else.
// Every element is built with createElement and textContent: no text from the API or the user is
// ever parsed as HTML.
'use strict';

(() => {
  // The API key lives in this variable only: never in the URL, a cookie or the browser's storage.
  let apiKey = '';
  const LOADING_RETRIES = 120; // 503 while the service loads: retry for up to about ten minutes
  const LABELS = {
    verbatim: {name: 'verbatim', says: 'the same words as a reported wording'},
    paraphrase: {name: 'paraphrase', says: 'the same statement in other words'},
    related: {name: 'related', says: 'on the same subject, not the same statement'},
    unmatched: {name: 'unmatched', says: 'no quote in the store is close to it'},
  };
  const FLAG_NAMES = {
    negation: 'Negation changed', number: 'Number changed', entity: 'Name changed',
    insertion: 'Words inserted', deletion: 'Words left out',
  };
  const KINDS = {direct: 'direct quote', partial: 'partial quote', indirect: 'reported speech'};

  // -- small helpers ------------------------------------------------------------------------------

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') el.className = value;
      else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : String(child));
    }
    return el;
  }
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];
  const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });
  const plural = (n, one, many = `${one}s`) => `${n.toLocaleString('en')} ${n === 1 ? one : many}`;
  const hidden = (text) => h('span', {class: 'visually-hidden'}, text);
  const quoted = (text) => `“${text}”`;

  function sentence(text) {
    const s = String(text || '').trim();
    if (!s) return '';
    const first = s[0].toUpperCase() + s.slice(1);
    return /[.!?…)]$/.test(first) ? first : `${first}.`;
  }

  function shorten(text, max = 90) {
    const flat = String(text).replace(/\s+/g, ' ').trim();
    return flat.length <= max ? flat : `${flat.slice(0, max - 1).trimEnd()}…`;
  }

  const DATE = new Intl.DateTimeFormat('en-GB', {day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC'});
  function dateEl(iso) {
    if (!iso) return h('span', {class: 'undated'}, 'undated');
    const when = new Date(`${iso}T00:00:00Z`);
    return h('time', {datetime: iso}, Number.isNaN(when.getTime()) ? iso : DATE.format(when));
  }

  // A link to a news site: opens without telling it where the reader came from.
  const outLink = (url, text) => h('a', {href: url, rel: 'noopener noreferrer external', class: 'out'}, text);
  const quoteLink = (id, text) => h('a', {href: `#/quote/${encodeURIComponent(id)}`}, text);
  const speakerLink = (ref) => (ref && ref.id
    ? h('a', {href: `#/speaker/${encodeURIComponent(ref.id)}`}, ref.name || ref.id)
    : h('span', {}, (ref && ref.name) || 'an unknown speaker'));

  // -- the API -----------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, problem, retryAfter) {
      super(problem.detail || `HTTP ${status}`);
      this.status = status;
      this.problem = problem;
      this.retryAfter = retryAfter;
    }
  }

  function retryAfter(response) {
    const value = response.headers.get('Retry-After');
    if (value === null) return null;
    const seconds = Number(value);
    if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds));
    const when = Date.parse(value);
    return Number.isNaN(when) ? null : Math.max(0, Math.ceil((when - Date.now()) / 1000));
  }

  async function readBody(response) {
    try {
      return await response.json();
    } catch {
      return {detail: `the service answered ${response.status} without a readable body`};
    }
  }

  const status = {
    el: null,
    isLoading: false, // a 503 is being waited out
    needsKey: false, // reads answered 401: the service wants a key for them
    loading(detail, seconds) {
      this.el.replaceChildren(h('p', {class: 'loading'},
        h('strong', {}, 'The service is starting. '),
        sentence(detail), ` Trying again in ${plural(seconds, 'second')}…`));
      this.isLoading = true;
    },
    loaded() {
      if (this.isLoading) {
        const ready = h('p', {}, 'The service is ready.');
        this.el.replaceChildren(ready);
        setTimeout(() => ready.remove(), 8000);
      }
      this.isLoading = false;
    },
    say(...content) { this.el.replaceChildren(h('p', {}, ...content)); },
    clear() { this.el.replaceChildren(); this.isLoading = false; },
  };

  async function api(path, {method = 'GET', body} = {}) {
    for (let attempt = 0; ; attempt += 1) {
      const headers = {Accept: 'application/json, application/problem+json'};
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      if (apiKey) headers['X-API-Key'] = apiKey;
      let response;
      try {
        response = await fetch(path, {
          method, headers, body: body === undefined ? undefined : JSON.stringify(body),
          cache: 'no-store', credentials: 'omit',
        });
      } catch {
        throw new ApiError(0, {detail: 'the service could not be reached: check the connection and try again'}, null);
      }
      if (response.status === 503 && attempt < LOADING_RETRIES) {
        const wait = retryAfter(response) ?? 5;
        status.loading((await readBody(response)).detail, wait);
        await sleep(wait * 1000);
        continue;
      }
      status.loaded();
      const data = await readBody(response);
      if (!response.ok) throw new ApiError(response.status, data, retryAfter(response));
      return data;
    }
  }

  // -- errors as sentences, fields highlighted -----------------------------------------------------

  function clearProblems(root) {
    for (const box of $$('.problem', root)) box.replaceChildren();
    for (const control of $$('[aria-invalid]', root)) {
      control.removeAttribute('aria-invalid');
      const note = document.getElementById(`${control.id}-error`);
      if (note) note.remove();
      const described = (control.getAttribute('aria-describedby') || '').split(' ')
        .filter((id) => id && id !== `${control.id}-error`);
      if (described.length) control.setAttribute('aria-describedby', described.join(' '));
      else control.removeAttribute('aria-describedby');
    }
  }

  function markInvalid(control, reason) {
    control.setAttribute('aria-invalid', 'true');
    const id = `${control.id}-error`;
    if (!document.getElementById(id)) {
      control.insertAdjacentElement('afterend', h('p', {id, class: 'field-error'}, sentence(reason)));
      const described = (control.getAttribute('aria-describedby') || '').split(' ').filter(Boolean);
      control.setAttribute('aria-describedby', [id, ...described].join(' '));
    }
  }

  const keyInput = () => $('#key-input');

  // Shows what went wrong in `scope` (a form or a view): the problem's detail as a sentence, what to
  // do about it, and each field in question highlighted where it is.
  function showProblem(scope, error) {
    const box = $('.problem', scope);
    if (!(error instanceof ApiError)) {
      box.replaceChildren(h('p', {}, 'Something went wrong in this page: ', String(error)));
      return;
    }
    const {status: code, problem} = error;
    const parts = [h('p', {}, h('strong', {}, sentence(problem.detail || problem.title || `Error ${code}`)))];
    let focus = null;
    if (code === 401) {
      parts.push(h('p', {}, apiKey
        ? 'The key in use was not accepted: enter another one in the API key field at the top of the page.'
        : 'Enter an API key in the API key field at the top of the page, then try again.'));
      markInvalid(keyInput(), apiKey ? 'This key was not accepted.' : 'A key is needed for this.');
      focus = keyInput();
    } else if (code === 429) {
      const wait = error.retryAfter ?? 60;
      const counter = h('span', {class: 'wait'}, plural(wait, 'second'));
      const line = h('p', {}, 'You can try again in ', counter, '.');
      parts.push(line);
      holdSubmit(scope, wait, line, counter);
    } else if (code === 503) {
      parts.push(h('p', {}, 'The service is not ready. Try again in a minute.'));
    }
    const fields = [];
    const params = problem.invalid_params || [];
    for (const param of params) {
      const control = $(`[data-field="${CSS.escape(param.name)}"]`, scope);
      if (control) {
        markInvalid(control, param.reason);
        focus = focus || control;
        const label = $(`label[for="${control.id}"]`);
        fields.push(h('li', {}, h('a', {href: `#${control.id}`, 'data-focus': control.id},
          label ? label.firstChild.textContent.trim() : param.name), ': ', sentence(param.reason)));
      }
    }
    if (fields.length && fields.length === params.length) {
      // The detail only lists the fields by their API names: say it with the form's own labels.
      parts[0] = h('p', {}, h('strong', {},
        `The service did not accept ${fields.length === 1 ? 'one field' : `${fields.length} fields`}:`));
    }
    if (fields.length) parts.push(h('ul', {}, fields));
    box.replaceChildren(...parts);
    if (focus) focus.focus();
  }

  // After a 429 the form's button waits out Retry-After, the seconds counting down beside the message.
  function holdSubmit(scope, seconds, line, counter) {
    const button = $('button[type="submit"]', scope);
    if (!button) return;
    button.disabled = true;
    const until = Date.now() + seconds * 1000;
    const timer = setInterval(() => {
      const left = Math.ceil((until - Date.now()) / 1000);
      if (left > 0) {
        counter.textContent = plural(left, 'second');
        return;
      }
      clearInterval(timer);
      line.textContent = 'You can try again now.';
      button.disabled = false;
    }, 1000);
  }

  // Runs `work` for a form: its problems cleared first, its button busy meanwhile, errors shown in it.
  async function submitting(form, busyText, work) {
    clearProblems(form);
    const button = $('button[type="submit"]', form);
    const label = button.textContent;
    button.disabled = true;
    button.textContent = busyText;
    form.setAttribute('aria-busy', 'true');
    try {
      await work();
    } catch (error) {
      showProblem(form, error);
      if (error instanceof ApiError && error.status === 429) {
        button.textContent = label;
        return; // holdSubmit re-enables it
      }
    } finally {
      form.removeAttribute('aria-busy');
    }
    button.textContent = label;
    button.disabled = false;
  }

  // -- the API key -------------------------------------------------------------------------------

  const waitingForKey = new Set(); // loads that failed with 401: run again once a key is given

  function setupKey() {
    const form = $('#key-form');
    const state = $('#key-state');
    const forget = $('#key-forget');
    const initial = state.textContent;
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      clearProblems(form);
      const value = keyInput().value.trim();
      keyInput().value = '';
      if (!value) {
        markInvalid(keyInput(), 'Enter a key first.');
        keyInput().focus();
        return;
      }
      apiKey = value;
      state.textContent = 'A key is in use in this tab, kept in its memory only until you forget it or close the tab.';
      forget.hidden = false;
      const again = [...waitingForKey];
      waitingForKey.clear();
      for (const load of again) load();
    });
    forget.addEventListener('click', () => {
      apiKey = '';
      state.textContent = initial;
      forget.hidden = true;
      keyInput().focus();
    });
  }

  // A view's load that may need the key: a 401 says so in the view, and the view loads again once a key is given.
  async function loadInto(view, work) {
    clearProblems(view);
    const content = $('.content', view);
    content.setAttribute('aria-busy', 'true');
    try {
      await work(content);
    } catch (error) {
      content.replaceChildren();
      showProblem(view, error);
      if (error instanceof ApiError && error.status === 401) waitingForKey.add(route);
    } finally {
      content.removeAttribute('aria-busy');
    }
  }

  // -- check a text ------------------------------------------------------------------------------

  const labelOf = (result) => (result.match && LABELS[result.match.label] ? result.match.label : 'unmatched');
  const isMisattributed = (result) => result.match && result.match.attribution === 'misattributed';
  const isAltered = (result) => result.match && result.match.flags.length > 0;
  const isDisputed = (result) => result.match && result.match.attribution === 'disputed';

  function attributionList(attributions, named) {
    return h('ul', {class: 'attributions'}, attributions.map((a) => h('li', {},
      speakerLink(a.speaker), ': ', plural(a.sources, 'source'), ', ', plural(a.mentions, 'mention'),
      named && a.speaker.id === named.id ? ' (the speaker this text names)' : '')));
  }

  const names = (attributions) => attributions.map((a) => a.speaker.name || a.speaker.id).join(' and ');

  // The verdict in words, with a symbol and a frame as well as a colour.
  function verdict(result) {
    const m = result.match;
    const named = result.speaker;
    const namedText = named ? (named.name && named.name !== named.mention
      ? `${named.name} (“${named.mention}”)` : named.mention) : null;
    const said = names(m.attributions);
    switch (m.attribution) {
      case 'misattributed':
        return h('div', {class: 'verdict verdict-misattributed'},
          h('p', {}, h('span', {class: 'icon', 'aria-hidden': 'true'}, '⚠'), h('strong', {}, 'Misattributed. '),
            `This text names ${namedText || 'a speaker'}; the sources say ${said} said it.`),
          attributionList(m.attributions, named));
      case 'disputed':
        return h('div', {class: 'verdict verdict-disputed'},
          h('p', {}, h('span', {class: 'icon', 'aria-hidden': 'true'}, '?'), h('strong', {}, 'Disputed. '),
            `The sources disagree on who said it${namedText ? `; this text names ${namedText}` : ''}.`),
          attributionList(m.attributions, named));
      case 'consistent':
        return h('div', {class: 'verdict verdict-consistent'},
          h('p', {}, h('span', {class: 'icon', 'aria-hidden': 'true'}, '✓'), h('strong', {}, 'Consistent. '),
            `The sources say ${said} said it, as this text does.`),
          attributionList(m.attributions, named));
      default:
        return h('div', {class: 'verdict verdict-unverified'},
          h('p', {}, h('span', {class: 'icon', 'aria-hidden': 'true'}, '–'), h('strong', {}, 'Speaker not checked. '),
            `This text names no speaker for it; the sources say ${said} said it.`),
          attributionList(m.attributions, named));
    }
  }

  // A word-level diff of the reported wording (before) and the text's wording (after): longest common
  // subsequence over words compared without case and punctuation.
  function wordDiff(before, after) {
    const words = (s) => s.split(/\s+/).filter(Boolean);
    const key = (w) => w.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, '');
    const a = words(before);
    const b = words(after);
    if (a.length * b.length > 250000) return null; // too long to diff in the page: both wordings are shown
    const ka = a.map(key);
    const kb = b.map(key);
    const lcs = Array.from({length: a.length + 1}, () => new Uint16Array(b.length + 1));
    for (let i = a.length - 1; i >= 0; i -= 1) {
      for (let j = b.length - 1; j >= 0; j -= 1) {
        lcs[i][j] = ka[i] === kb[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
      }
    }
    const ops = [];
    const push = (type, word) => {
      const last = ops[ops.length - 1];
      if (last && last.type === type) last.words.push(word);
      else ops.push({type, words: [word]});
    };
    let i = 0;
    let j = 0;
    while (i < a.length || j < b.length) {
      if (i < a.length && j < b.length && ka[i] === kb[j]) {
        push('same', b[j]);
        i += 1;
        j += 1;
      } else if (j < b.length && (i === a.length || lcs[i][j + 1] >= lcs[i + 1][j])) {
        push('added', b[j]);
        j += 1;
      } else {
        push('removed', a[i]);
        i += 1;
      }
    }
    return ops;
  }

  function diffView(before, after) {
    const ops = wordDiff(before, after);
    if (ops && ops.every((op) => op.type === 'same')) {
      return h('p', {class: 'diff'}, 'The same words as the reported wording: ', h('q', {}, before));
    }
    if (!ops) {
      return h('div', {}, h('p', {}, 'Reported: ', h('q', {}, before)), h('p', {}, 'This text: ', h('q', {}, after)));
    }
    const pieces = [h('span', {class: 'legend-line'}, 'Word by word, from the reported wording to this text (',
      h('del', {}, 'removed'), ', ', h('ins', {}, 'added'), '):'), h('br')];
    for (const op of ops) {
      const text = op.words.join(' ');
      if (pieces.length > 2) pieces.push(' ');
      if (op.type === 'same') pieces.push(text);
      else if (op.type === 'removed') pieces.push(h('del', {}, hidden('[removed: '), text, hidden(']')));
      else pieces.push(h('ins', {}, hidden('[added: '), text, hidden(']')));
    }
    return h('p', {class: 'diff'}, ...pieces);
  }

  function changes(m, segmentText) {
    const flags = m.flags.map((f) => h('li', {class: 'flag'},
      h('strong', {}, `${FLAG_NAMES[f.type] || f.type}: `), sentence(f.detail),
      f.removed.length ? [' Removed: ', h('del', {}, f.removed.join(', ')), '.'] : '',
      f.added.length ? [' Added: ', h('ins', {}, f.added.join(', ')), '.'] : ''));
    return [
      m.flags.length
        ? h('div', {class: 'verdict verdict-altered'},
          h('p', {}, h('span', {class: 'icon', 'aria-hidden': 'true'}, '⚠'), h('strong', {}, 'Altered. '),
            `The wording changes the meaning of what was reported (${plural(m.flags.length, 'change')}).`),
          h('ul', {class: 'flags'}, flags))
        : h('p', {}, m.clean ? 'No change of meaning found.' : 'No change of meaning found, but the wording is only related.'),
      diffView(m.compared_with, segmentText),
    ];
  }

  function sourcesList(sources) {
    return h('ol', {class: 'sources'}, sources.map((s) => h('li', {},
      h('span', {class: 'outlet'}, s.outlet), ', ', dateEl(s.published), ': ',
      outLink(s.url, s.title || s.url), h('br'),
      h('span', {class: 'hint'}, `${KINDS[s.kind] || s.kind}, said by `, s.speaker.name || 'an unknown speaker',
        ' according to this source: '), h('q', {}, shorten(s.wording, 160)))));
  }

  // The API counts offsets in code points; JavaScript strings index UTF-16 units, which differ as soon
  // as a text holds an emoji: the text is kept as an array of code points.
  const check = {results: [], chars: []};
  const slice = (start, end) => check.chars.slice(start, end).join('');

  function segmentText(result) {
    return slice(result.start, result.end) || result.text;
  }

  function renderDetail(index) {
    const result = check.results[index];
    const label = labelOf(result);
    const detail = $('#check-detail');
    const m = result.match;
    const head = h('h2', {id: 'detail-h', tabindex: '-1'},
      `Segment ${index + 1} of ${check.results.length}: `, h('q', {}, shorten(result.text, 80)));
    const parts = [head];
    if (!m) {
      parts.push(h('p', {class: 'label-line'}, h('span', {class: `pill label-${label}`}, LABELS.unmatched.name),
        ' No quote in the store is close to this segment.'));
      if (result.speaker) parts.push(h('p', {}, `This text names ${result.speaker.name || result.speaker.mention} as the speaker.`));
    } else {
      parts.push(verdict(result));
      parts.push(h('dl', {class: 'facts'},
        h('dt', {}, 'Match'),
        h('dd', {}, h('span', {class: `pill label-${label}`}, LABELS[label].name), ` ${LABELS[label].says}; similarity `,
          h('strong', {class: 'similarity'}, m.similarity.toFixed(2)), ' out of 1.'),
        h('dt', {}, 'Canonical quote'),
        h('dd', {}, h('blockquote', {class: 'quote-text'}, m.text),
          h('p', {}, '— ', speakerLink(m.speaker), m.disputed ? ' (disputed)' : '', '. ',
            quoteLink(m.quote_id, 'Every wording of this quote'))),
        h('dt', {}, 'Changes'),
        h('dd', {}, changes(m, result.text)),
        h('dt', {}, `Sources (${m.sources.length}), earliest first`),
        h('dd', {}, sourcesList(m.sources))));
    }
    if (result.alternatives.length) {
      parts.push(h('h3', {}, 'Other close quotes'), h('ul', {class: 'alternatives'}, result.alternatives.map((c) => h('li', {},
        quoteLink(c.quote_id, shorten(c.text, 120)), ' — ', c.speaker.name || 'unknown speaker',
        `, similarity ${c.similarity.toFixed(2)}`))));
    }
    parts.push(h('p', {}, h('button', {type: 'button', class: 'link-button', onclick: () => {
      const mark = $(`[data-segment="${index}"]`);
      if (mark) mark.focus();
    }}, 'Back to this segment in the text')));
    detail.replaceChildren(...parts);
    for (const mark of $$('[data-segment]')) {
      if (Number(mark.dataset.segment) === index) mark.setAttribute('aria-current', 'true');
      else mark.removeAttribute('aria-current');
    }
  }

  function selectSegment(index) {
    renderDetail(index);
    $('#detail-h').focus();
  }

  function segmentMark(result, index) {
    const label = labelOf(result);
    const problems = [];
    if (isMisattributed(result)) problems.push('misattributed');
    if (isAltered(result)) problems.push('altered');
    if (isDisputed(result)) problems.push('disputed');
    const classes = ['seg', `label-${label}`, ...problems.map((p) => `is-${p}`)];
    return h('a', {
      href: '#/check', class: classes.join(' '), 'data-segment': index,
      onclick: (event) => { event.preventDefault(); selectSegment(index); },
    }, segmentText(result),
    h('span', {class: 'tag', 'aria-hidden': 'true'}, [label, ...problems.map((p) => `⚠ ${p}`)].join(' · ')),
    hidden(` (segment ${index + 1}: ${[label, ...problems].join(', ')})`));
  }

  // The input with its segments in place. A segment overlapping the one before it (it should not
  // happen) is listed in the summary only.
  function markedText() {
    const out = [];
    let at = 0;
    check.results.forEach((result, index) => {
      if (result.start < at) return;
      if (result.start > at) out.push(slice(at, result.start));
      out.push(segmentMark(result, index));
      at = result.end;
    });
    if (at < check.chars.length) out.push(slice(at, check.chars.length));
    return h('div', {class: 'marked', id: 'marked-text'}, out);
  }

  function summary() {
    const results = check.results;
    if (!results.length) {
      return [h('p', {class: 'summary'}, 'No quotation or sentence to check was found in this text.')];
    }
    const counts = Object.keys(LABELS).map((label) => [label, results.filter((r) => labelOf(r) === label).length])
      .filter(([, n]) => n).map(([label, n]) => `${n} ${label}`);
    const out = [h('p', {class: 'summary'}, `${plural(results.length, 'segment')}: ${counts.join(', ')}.`)];
    const attention = results.map((r, i) => [r, i]).filter(([r]) => isMisattributed(r) || isAltered(r));
    if (attention.length) {
      out.push(h('div', {class: 'attention'},
        h('h2', {}, h('span', {class: 'icon', 'aria-hidden': 'true'}, '⚠'),
          ` ${plural(attention.length, 'segment needs', 'segments need')} attention`),
        h('ul', {}, attention.map(([r, i]) => h('li', {},
          h('strong', {}, [isMisattributed(r) && 'Misattributed', isAltered(r) && 'Altered'].filter(Boolean).join(' and ')),
          ': ', h('a', {href: '#/check', onclick: (event) => { event.preventDefault(); selectSegment(i); }},
            quoted(shorten(r.text, 70))),
          isMisattributed(r) ? ` — the sources say ${names(r.match.attributions)} said it` : '',
          isAltered(r) ? ` — ${r.match.flags.map((f) => f.detail).join('; ')}` : '')))));
    } else {
      out.push(h('p', {class: 'all-clear'}, 'No misattributed or altered quote found.'));
    }
    const disputed = results.filter(isDisputed).length;
    if (disputed) out.push(h('p', {}, `${plural(disputed, 'segment matches', 'segments match')} a disputed quote.`));
    return out;
  }

  function legend() {
    return h('ul', {class: 'legend', 'aria-label': 'Highlights'}, Object.entries(LABELS).map(([label, d]) => h('li', {},
      h('span', {class: `seg label-${label}`}, d.name), ` ${d.says}`)));
  }

  function renderCheck() {
    const out = $('#check-result');
    out.replaceChildren(
      h('h2', {id: 'result-h', tabindex: '-1'}, 'Result'),
      ...summary(),
      legend(),
      h('div', {class: 'check-layout'}, markedText(),
        h('section', {id: 'check-detail', class: 'detail', 'aria-labelledby': 'detail-h'},
          h('h2', {id: 'detail-h', tabindex: '-1'}, 'Details'),
          h('p', {class: 'hint'}, check.results.length
            ? 'Select a highlighted segment to see its quote, its speaker and its sources.' : ''))));
    $('#result-h').focus();
  }

  function setupCheck() {
    const form = $('#check-form');
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const text = $('#check-text').value;
      const speaker = $('#check-speaker').value.trim();
      const body = {text, top_k: 3};
      if (speaker) body.speaker = speaker;
      submitting(form, 'Checking…', async () => {
        const data = await api('/v1/attributions', {method: 'POST', body});
        Object.assign(check, {results: data.results, chars: Array.from(text)});
        renderCheck();
      });
    });
  }

  // -- browse ------------------------------------------------------------------------------------

  function quoteItem(q) {
    return h('li', {class: 'quote-item'},
      h('blockquote', {class: 'quote-text'}, quoteLink(q.id, q.text)),
      h('p', {class: 'hint'}, '— ', q.speaker.name || 'unknown speaker', ', ', plural(q.sources, 'source'),
        q.disputed ? [' · ', h('strong', {class: 'disputed-mark'}, '? disputed: '), names(q.attributions)] : ''));
  }

  const views = {
    async speakers(view) {
      await loadInto(view, async (content) => {
        const {speakers} = await api('/v1/speakers');
        const speaking = speakers.filter((s) => s.kind !== 'media');
        const withQuotes = speaking.filter((s) => s.quotes > 0);
        const silent = speaking.filter((s) => s.quotes === 0);
        const item = (s) => h('li', {}, speakerLink(s), s.role ? `, ${s.role}` : '', ` — ${plural(s.quotes, 'quote')}`,
          s.aliases.filter((a) => a !== s.name).length
            ? h('span', {class: 'hint'}, ` (also: ${s.aliases.filter((a) => a !== s.name).join(', ')})`) : '');
        content.replaceChildren(
          h('p', {}, `${plural(withQuotes.length, 'speaker')} with quotes in the store.`),
          h('ul', {class: 'speakers'}, withQuotes.map(item)),
          silent.length ? h('details', {}, h('summary', {}, `Named, but no quote yet (${silent.length})`),
            h('ul', {class: 'speakers'}, silent.map(item))) : '');
      });
    },

    async speaker(view, id) {
      await loadInto(view, async (content) => {
        const [speaker, page] = await Promise.all([
          api(`/v1/speakers/${encodeURIComponent(id)}`),
          api(`/v1/quotes?speaker=${encodeURIComponent(id)}&limit=100`),
        ]);
        $('h1', view).textContent = speaker.name;
        content.replaceChildren(
          h('p', {}, [speaker.role, speaker.kind].filter(Boolean).join(' · ')),
          speaker.aliases.length ? h('p', {class: 'hint'}, `Also named: ${speaker.aliases.join(', ')}`) : '',
          h('h2', {}, `${plural(page.total, 'quote')} ascribed to ${speaker.name} by at least one source`),
          h('ul', {class: 'quotes'}, page.quotes.map(quoteItem)));
      });
    },

    async quote(view, id) {
      await loadInto(view, async (content) => {
        const q = await api(`/v1/quotes/${encodeURIComponent(id)}`);
        // A source that names someone else than most sources do is marked in words, not by colour only.
        const other = (v) => q.disputed && v.speaker.id !== q.speaker.id;
        const wordings = q.variants.map((v) => h('article', {class: other(v) ? 'wording other-speaker' : 'wording'},
          h('h3', {}, v.outlet, ', ', dateEl(v.published)),
          other(v) ? h('p', {class: 'other-note'}, h('span', {'aria-hidden': 'true'}, '? '),
            `This source names ${v.speaker.name || 'another speaker'}, not ${q.speaker.name}.`) : '',
          h('blockquote', {class: 'quote-text'}, v.wording),
          h('dl', {},
            h('dt', {}, 'Said by, in this source'), h('dd', {}, speakerLink(v.speaker),
              v.speaker_mention ? ` (“${v.speaker_mention}”${v.cue ? `, ${v.cue}` : ''})` : ''),
            h('dt', {}, 'Kind'), h('dd', {}, KINDS[v.kind] || v.kind),
            h('dt', {}, 'Article'), h('dd', {}, outLink(v.url, v.title || v.url)))));
        content.replaceChildren(
          h('blockquote', {class: 'quote-text canonical'}, q.text),
          h('p', {}, '— ', speakerLink(q.speaker), `, according to ${plural(q.sources, 'source')}.`),
          q.disputed
            ? h('div', {class: 'verdict verdict-disputed'},
              h('p', {}, h('span', {class: 'icon', 'aria-hidden': 'true'}, '?'), h('strong', {}, 'Disputed. '),
                `The sources disagree on who said it: ${names(q.attributions)}.`),
              attributionList(q.attributions, null))
            : h('div', {}, h('h2', {}, 'Who said it'), attributionList(q.attributions, null)),
          h('h2', {}, `${plural(q.variants.length, 'wording')}, earliest first`),
          h('div', {class: 'wordings'}, wordings));
      });
    },

    async disputed(view) {
      await loadInto(view, async (content) => {
        const page = await api('/v1/quotes?disputed=true&limit=100');
        content.replaceChildren(
          h('p', {}, `${plural(page.total, 'disputed quote')}.`),
          h('ul', {class: 'quotes'}, page.quotes.map(quoteItem)));
      });
    },

    async search(view, q) {
      const input = $('#search-q');
      input.value = q;
      if (!q) {
        $('.content', view).replaceChildren();
        return;
      }
      await searchPage(view, q, 0);
    },

    async check() {},
    async add() {},
  };

  const PAGE = 20;
  async function searchPage(view, q, offset) {
    await loadInto(view, async (content) => {
      const page = await api(`/v1/quotes?q=${encodeURIComponent(q)}&limit=${PAGE}&offset=${offset}`);
      const list = offset ? $('ul.quotes', content) : h('ul', {class: 'quotes'});
      list.append(...page.quotes.map(quoteItem));
      const shown = offset + page.quotes.length;
      const more = shown < page.total
        ? h('p', {}, h('button', {type: 'button', onclick: () => searchPage(view, q, shown)},
          `Show more (${shown} of ${page.total} shown)`)) : '';
      content.replaceChildren(h('p', {id: 'search-count'},
        `${plural(page.total, 'quote')} with the words ${quoted(q)}.`), list, more);
    });
  }

  function setupSearch() {
    $('#search-form').addEventListener('submit', (event) => {
      event.preventDefault();
      clearProblems($('#search-form'));
      const q = $('#search-q').value.trim();
      const target = `#/search/${encodeURIComponent(q)}`;
      if (location.hash === target) route();
      else location.hash = target;
    });
  }

  // -- add an article ----------------------------------------------------------------------------

  function setupAdd() {
    const form = $('#add-form');
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const value = (field) => $(`[data-field="${field}"]`, form).value;
      const body = {outlet: value('outlet').trim(), url: value('url').trim(), text: value('text'), title: value('title').trim()};
      body.published = value('published') || null;
      const content = $('.content', $('#view-add'));
      submitting(form, 'Adding…', async () => {
        const report = await api('/v1/articles', {method: 'POST', body});
        const ids = [...report.new_quotes, ...report.joined_quotes];
        const quotes = await Promise.all(ids.slice(0, 20).map((id) => api(`/v1/quotes/${encodeURIComponent(id)}`)));
        const done = {
          added: 'The article was added.', updated: 'The article was updated.',
          unchanged: 'The store already holds this article, unchanged.',
        }[report.status] || `Status: ${report.status}.`;
        content.replaceChildren(
          h('h2', {id: 'added-h', tabindex: '-1'}, done),
          h('p', {}, `${plural(report.mentions.length, 'attributed statement')} found: `,
            `${plural(report.new_quotes.length, 'new quote')}, ${report.joined_quotes.length} joined to quotes already in the store.`),
          quotes.length ? h('ul', {class: 'quotes'}, quotes.map(quoteItem)) : '');
        $('#added-h').focus();
        refreshInfo();
      });
    });
  }

  // -- routing: #/check, #/speakers, #/speaker/ID, #/quote/ID, #/disputed, #/search/WORDS, #/add ---------

  const NAV_OF = {speaker: 'speakers', quote: null};
  let firstRoute = true;

  async function route() {
    const m = location.hash.match(/^#\/([a-z]+)(?:\/(.*))?$/);
    if (location.hash && !(m && m[1] in views)) return; // an anchor in the page, such as the skip link
    const name = m ? m[1] : 'check';
    let arg = '';
    try {
      arg = m && m[2] ? decodeURIComponent(m[2]) : '';
    } catch {
      arg = m[2];
    }
    const view = $(`#view-${name}`);
    for (const section of $$('main > section')) section.hidden = section !== view;
    const nav = name in NAV_OF ? NAV_OF[name] : name;
    for (const link of $$('[data-nav]')) {
      if (link.dataset.nav === nav) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    const heading = $('h1', view);
    if (name === 'quote' || name === 'speaker') heading.textContent = name === 'quote' ? 'One quote, every wording' : 'Speaker';
    document.title = `${heading.textContent} · Who said it?`;
    if (!firstRoute) heading.focus(); // a keyboard or screen reader user lands on the new view
    firstRoute = false;
    await views[name](view, arg);
    document.title = `${heading.textContent} · Who said it?`;
  }

  // -- the store, in the footer; a 401 here means reads need a key -------------------------------

  async function refreshInfo() {
    const foot = $('#store-info');
    try {
      const info = await api('/v1/info');
      const s = info.store;
      foot.replaceChildren(h('p', {},
        `The store holds ${plural(s.quotes, 'quote')} from ${plural(s.articles, 'article')}. `,
        `Matching by ${String(info.model.name).split('/').pop()}. `, h('a', {href: '/docs'}, 'API documentation')));
      const hint = $('[data-limit-hint]');
      if (hint) hint.textContent = `Up to ${info.limits.max_text_chars.toLocaleString('en')} characters.`;
      if (status.needsKey) status.clear();
      status.needsKey = false;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        status.needsKey = true;
        status.say(h('strong', {}, 'This service asks for an API key for every request. '),
          'Enter yours in the API key field at the top of the page.');
        waitingForKey.add(refreshInfo);
      } else {
        foot.replaceChildren(h('p', {}, 'The store could not be described: ', sentence(error.message), ' ',
          h('a', {href: '/docs'}, 'API documentation')));
      }
    }
  }

  function start() {
    status.el = $('#status');
    setupKey();
    setupCheck();
    setupSearch();
    setupAdd();
    // Links to a field in an error message move the focus to that field.
    document.addEventListener('click', (event) => {
      const link = event.target.closest('a[data-focus]');
      if (!link) return;
      event.preventDefault();
      const field = document.getElementById(link.dataset.focus);
      if (field) field.focus();
    });
    $('.skip').addEventListener('click', (event) => {
      event.preventDefault();
      $('main > section:not([hidden]) h1').focus();
    });
    window.addEventListener('hashchange', route);
    route();
    refreshInfo();
  }

  start();
})();
