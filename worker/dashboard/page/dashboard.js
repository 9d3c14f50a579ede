// The dashboard page: one EventSource brings the live state; job lists and job pages are fetched
// as JSON and fetched again when the state says the database changed. Every value from a job row is
// put on the page as text (never as HTML): rows hold whatever the API was given.

const ACTION_HEADER = { 'x-media-worker-action': '1' };
const FINISHED = new Set(['completed', 'error']);

let state = null;
let lastQueueRead = 0;
/** Re-renders the current route with fresh data; set by each route. */
let refreshRoute = () => {};

// ---- small DOM helpers -----------------------------------------------------------------------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const svg = (tag, attributes = {}) => {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
};

function ago(ms) {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 120) return `${seconds}s ago`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m ago`;
  return `${Math.round(seconds / 3600)}h ago`;
}

const time = (ms) => (ms === null || ms === undefined ? '–' : new Date(ms).toLocaleString());
const duration = (ms) =>
  ms === null || ms === undefined ? '–' : ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
const jobLink = (jobId) => el('a', { href: `#job/${encodeURIComponent(jobId)}`, class: 'mono' }, jobId);
const badge = (text) => el('span', { class: `badge ${text}` }, text);
const section = (title, note, ...body) =>
  el(
    'section',
    { id: title.toLowerCase().replace(/\W+/g, '-') },
    el('h2', {}, title, note ? el('small', {}, note) : null),
    ...body,
  );
const tableHead = (headers) =>
  el(
    'thead',
    {},
    el(
      'tr',
      {},
      headers.map(([label, cls]) => el('th', { class: cls }, label)),
    ),
  );
const table = (headers, rows, empty) =>
  rows.length === 0
    ? el('p', { class: 'muted' }, empty)
    : el('table', {}, tableHead(headers), el('tbody', {}, rows));

/**
 * Replaces a table body's rows with `rows` ({key, build}), keeping every row whose key is unchanged
 * as it is: a button under the pointer is never swapped for a copy while it is being clicked.
 */
function patchRows(body, rows) {
  const existing = new Map([...body.children].map((row) => [row.dataset.key, row]));
  rows.forEach(({ key, build }, index) => {
    let row = existing.get(key);
    existing.delete(key);
    if (!row) {
      row = build();
      row.dataset.key = key;
    }
    if (body.children[index] !== row) body.insertBefore(row, body.children[index] ?? null);
  });
  for (const row of existing.values()) row.remove();
}

/** A table patched in place (patchRows), with a line shown instead when it has no rows. */
function liveTable(headers, empty) {
  const body = el('tbody');
  const grid = el('table', {}, tableHead(headers), body);
  const none = el('p', { class: 'muted' }, empty);
  return {
    node: el('div', {}, grid, none),
    update(rows) {
      patchRows(body, rows);
      grid.hidden = rows.length === 0;
      none.hidden = rows.length > 0;
    },
  };
}

/** A progress bar and its figure; setProgress moves them without rebuilding anything. */
const progressCell = (percent) =>
  el(
    'td',
    { class: 'progress' },
    el('progress', { max: 100, value: Math.round(percent) }),
    el('span', {}, ` ${Math.round(percent)}%`),
  );

function setProgress(container, percent) {
  const bar = container?.querySelector('progress');
  if (!bar || percent === undefined) return;
  bar.value = Math.round(percent);
  bar.nextElementSibling.textContent = ` ${Math.round(percent)}%`;
}

function notice(text) {
  const box = document.getElementById('notice');
  box.textContent = text;
  box.hidden = false;
  clearTimeout(notice.timer);
  notice.timer = setTimeout(() => {
    box.hidden = true;
  }, 4000);
}

// ---- actions ---------------------------------------------------------------------------------

async function act(jobId, action, button) {
  button.disabled = true;
  try {
    const response = await fetch(`/api/jobs/${encodeURIComponent(jobId)}/${action}`, {
      method: 'POST',
      headers: ACTION_HEADER,
    });
    const outcome = await response.json();
    notice(
      outcome.kind === 'refused'
        ? `${action} refused: ${outcome.reason}`
        : outcome.kind === 'cancel-requested'
          ? `cancel sent to ${outcome.workerId ?? 'the worker running it'}`
          : `${jobId}: ${outcome.kind}`,
    );
  } catch (error) {
    notice(`${action} failed: ${error.message}`);
  } finally {
    button.disabled = false;
    refreshRoute();
  }
}

function actions(job) {
  const buttons = [];
  if (job.status === 'error') {
    buttons.push(
      el('button', { class: 'retry', onclick: (event) => act(job.job_id, 'retry', event.target) }, 'Retry'),
    );
  }
  if (!FINISHED.has(job.status)) {
    buttons.push(
      el(
        'button',
        { class: 'cancel', onclick: (event) => act(job.job_id, 'cancel', event.target) },
        'Cancel',
      ),
    );
  }
  return buttons;
}

// ---- live state ------------------------------------------------------------------------------

function liveProgress(jobId) {
  return state?.live.find((job) => job.jobId === jobId);
}

function renderConnection(online) {
  const pills = [el('span', { class: `pill ${online ? 'ok' : 'bad'}` }, online ? 'live' : 'reconnecting…')];
  if (state) {
    const broker = state.broker;
    pills.push(
      broker.configured
        ? el(
            'span',
            { class: `pill ${broker.connected ? 'ok' : 'bad'}`, title: broker.error ?? broker.url },
            broker.connected ? 'broker' : `broker: ${broker.error ?? 'connecting'}`,
          )
        : el('span', { class: 'pill', title: broker.reason }, 'no broker'),
    );
    const queue = state.queue;
    if (queue && !queue.ok)
      pills.push(el('span', { class: 'pill bad', title: queue.error }, 'database unreadable'));
  }
  document.getElementById('connection').replaceChildren(...pills);
}

function connect() {
  const events = new EventSource('/api/events');
  events.addEventListener('state', (message) => {
    state = JSON.parse(message.data);
    renderConnection(true);
    const readAt = state.queue?.ok ? state.queue.snapshot.readAt : 0;
    const databaseChanged = readAt !== lastQueueRead;
    lastQueueRead = readAt;
    route({ live: true, databaseChanged });
  });
  events.addEventListener('error', () => renderConnection(false));
}

// ---- overview --------------------------------------------------------------------------------

function workersSection() {
  const rows = state.workers.map((worker) => {
    const busy = worker.concurrency === undefined ? '?' : worker.concurrency - worker.idleCount;
    const versions = Object.entries(worker.moduleVersions)
      .map(
        ([module, tools]) =>
          `${module}: ${Object.entries(tools)
            .map(([tool, version]) => `${tool} ${version}`)
            .join(', ')}`,
      )
      .join('; ');
    return el(
      'tr',
      { class: 'worker', 'data-worker-id': worker.id },
      el('td', { class: 'mono' }, worker.id),
      el('td', {}, worker.hostname || '–'),
      el('td', {}, worker.capabilities.join(', ')),
      el('td', { class: 'num' }, `${busy} busy / ${worker.idleCount} idle`),
      el('td', {}, badge(worker.state), worker.stale ? [' ', badge('stale')] : null),
      el(
        'td',
        { class: 'muted' },
        worker.version ? `media-worker ${worker.version}` : '',
        versions ? el('div', {}, versions) : null,
      ),
      el('td', { class: 'last-seen', title: time(worker.lastSeen) }, ago(state.now - worker.lastSeen)),
    );
  });
  const note = state.broker.configured ? `from ${state.broker.url}` : state.broker.reason;
  return section(
    'Workers',
    note,
    table(
      [['Worker'], ['Host'], ['Task types'], ['Slots', 'num'], ['State'], ['Versions'], ['Last seen']],
      rows,
      state.broker.configured ? 'No worker announced.' : 'No broker configured.',
    ),
  );
}

function throughputChart(finished, now) {
  const width = 600;
  const height = 90;
  const minuteNow = Math.floor(now / 60000);
  const perMinute = new Map();
  for (const row of finished) {
    const entry = perMinute.get(row.minute) ?? { completed: 0, error: 0 };
    entry[row.status === 'error' ? 'error' : 'completed'] += row.jobs;
    perMinute.set(row.minute, entry);
  }
  const peak = Math.max(1, ...[...perMinute.values()].map((entry) => entry.completed + entry.error));
  const chart = svg('svg', {
    class: 'chart',
    viewBox: `0 0 ${width} ${height}`,
    preserveAspectRatio: 'none',
    role: 'img',
  });
  const bar = width / 60;
  for (let index = 0; index < 60; index += 1) {
    const entry = perMinute.get(minuteNow - 59 + index);
    if (!entry) continue;
    const completedHeight = (entry.completed / peak) * (height - 4);
    const errorHeight = (entry.error / peak) * (height - 4);
    const x = index * bar + 0.5;
    chart.append(
      svg('rect', {
        class: 'completed',
        x,
        width: bar - 1,
        y: height - completedHeight,
        height: completedHeight,
      }),
    );
    chart.append(
      svg('rect', {
        class: 'error',
        x,
        width: bar - 1,
        y: height - completedHeight - errorHeight,
        height: errorHeight,
      }),
    );
  }
  chart.append(svg('line', { class: 'axis', x1: 0, x2: width, y1: height - 0.5, y2: height - 0.5 }));
  const title = svg('title');
  title.textContent = `jobs finished per minute over the last hour (peak ${peak})`;
  chart.prepend(title);
  return chart;
}

function queueSection() {
  const queue = state.queue;
  if (!queue) return section('Queue', null, el('p', { class: 'muted' }, 'Reading the database…'));
  if (!queue.ok)
    return section('Queue', null, el('p', { class: 'error' }, `The database cannot be read: ${queue.error}`));
  const { overview, readAt } = queue.snapshot;
  const types = new Map();
  const row = (type) => {
    if (!types.has(type)) types.set(type, { queued: 0, claimed: 0, processing: 0, completed: 0, error: 0 });
    return types.get(type);
  };
  for (const { task_type, status, jobs } of overview.active) row(task_type)[status] += jobs;
  for (const { task_type, status, jobs } of overview.finished) row(task_type)[status] += jobs;
  const totals = Object.fromEntries(overview.totals.map(({ status, jobs }) => [status, jobs]));
  const hourDone = overview.finished.reduce((sum, item) => sum + item.jobs, 0);
  return section(
    'Queue',
    `${hourDone} finished in the last hour`,
    table(
      [['Task type'], ['Queued', 'num'], ['Running', 'num'], ['Done (1 h)', 'num'], ['Failed (1 h)', 'num']],
      [...types.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([type, counts]) =>
          el(
            'tr',
            { class: 'queue-row', 'data-task-type': type },
            el('td', {}, el('a', { href: `#jobs?task=${encodeURIComponent(type)}` }, type)),
            el('td', { class: 'num queued' }, counts.queued),
            el('td', { class: 'num' }, counts.claimed + counts.processing),
            el('td', { class: 'num done' }, counts.completed),
            el('td', { class: 'num failed' }, counts.error),
          ),
        ),
      'No jobs queued, running or finished in the last hour.',
    ),
    el(
      'p',
      { class: 'muted totals' },
      'All jobs: ',
      ['queued', 'claimed', 'processing', 'completed', 'error']
        .map((status) => `${status} ${totals[status] ?? 0}`)
        .join(' · '),
    ),
    throughputChart(overview.finished, state.now),
    el(
      'div',
      { class: 'legend' },
      el('span', {}, el('i', { class: 'swatch-ok' }), 'completed / min'),
      el('span', {}, el('i', { class: 'swatch-bad' }), 'failed / min'),
      el('span', {}, `read ${ago(state.now - readAt)}`),
    ),
  );
}

/** What a row shows, progress aside (bars move in place; see setProgress). */
const withoutProgress = (job) => (job ? { ...job, progress: null } : job);

/** Running jobs: from the database, with progress, worker and attempt from the live events. */
function runningJobs() {
  const fromDatabase = state.queue?.ok ? state.queue.snapshot.running : [];
  const rows = new Map();
  for (const job of fromDatabase) {
    const live = liveProgress(job.job_id);
    rows.set(job.job_id, {
      jobId: job.job_id,
      taskType: job.task_type,
      workerId: live?.workerId ?? null,
      attempt: live?.attempt ?? job.retry_count + 1,
      progress: live?.progress ?? job.progress,
      status: live?.status ?? job.status,
      job,
    });
  }
  for (const live of state.live) {
    if (live.status !== 'processing' || rows.has(live.jobId)) continue;
    rows.set(live.jobId, { ...live, job: null });
  }
  return [...rows.values()];
}

function runningRow(item) {
  const { progress, ...rest } = item;
  return {
    key: JSON.stringify({ ...rest, job: withoutProgress(rest.job) }),
    build: () =>
      el(
        'tr',
        { class: 'job', 'data-job-id': item.jobId },
        el('td', {}, jobLink(item.jobId)),
        el('td', {}, item.taskType),
        el('td', { class: 'mono' }, item.workerId ?? '–'),
        el('td', { class: 'num' }, item.attempt ?? '–'),
        progressCell(progress),
        el('td', {}, badge(item.status)),
        el('td', {}, item.job ? actions(item.job) : null),
      ),
  };
}

/** A row of a job list; rebuilt only when the job (or, every 30 s, its age) changed. */
function jobRow(job, columns) {
  return {
    key: JSON.stringify([withoutProgress(job), columns.length, Math.floor(state.now / 30000)]),
    build: () =>
      el(
        'tr',
        { class: 'job', 'data-job-id': job.job_id },
        columns.map((column) => column(job)),
        el('td', {}, actions(job)),
      ),
  };
}

const COLUMNS = {
  id: (job) => el('td', {}, jobLink(job.job_id)),
  task: (job) => el('td', {}, job.task_type),
  status: (job) => el('td', {}, badge(job.status)),
  priority: (job) => el('td', { class: 'num' }, job.priority ?? 5),
  created: (job) => el('td', { title: time(job.created_at) }, ago(state.now - job.created_at)),
  finished: (job) =>
    el('td', { title: time(job.completed_at) }, job.completed_at ? ago(state.now - job.completed_at) : '–'),
  retries: (job) => el('td', { class: 'num' }, `${job.retry_count}/${job.max_retries}`),
  error: (job) => el('td', { class: 'error' }, job.error_message ?? ''),
};

/** The overview's job tables: built once per visit, then patched row by row. */
function jobTables() {
  const running = liveTable(
    [['Job'], ['Task'], ['Worker'], ['Attempt', 'num'], ['Progress'], ['Status'], ['']],
    'Nothing running.',
  );
  const queued = liveTable([['Job'], ['Task'], ['Priority', 'num'], ['Queued'], ['']], 'Nothing queued.');
  const failures = liveTable(
    [['Job'], ['Task'], ['Failed'], ['Retries', 'num'], ['Error'], ['']],
    'No failures.',
  );
  const runningCount = el('small', {});
  const runningSection = el(
    'section',
    { id: 'running' },
    el('h2', {}, 'Running', runningCount),
    running.node,
  );
  return {
    sections: [
      runningSection,
      section(
        'Queued',
        'in claim order',
        queued.node,
        el('p', {}, el('a', { href: '#jobs?status=queued' }, 'All queued jobs →')),
      ),
      section(
        'Recent failures',
        null,
        failures.node,
        el('p', {}, el('a', { href: '#jobs?status=error' }, 'All failed jobs →')),
      ),
    ],
    update() {
      const snapshot = state.queue?.ok ? state.queue.snapshot : undefined;
      const items = runningJobs();
      running.update(items.map(runningRow));
      for (const item of items)
        setProgress(
          runningSection.querySelector(`tr[data-job-id="${CSS.escape(item.jobId)}"]`),
          item.progress,
        );
      runningCount.textContent = String(items.length);
      queued.update(
        (snapshot?.queuedHead ?? []).map((job) =>
          jobRow(job, [COLUMNS.id, COLUMNS.task, COLUMNS.priority, COLUMNS.created]),
        ),
      );
      failures.update(
        (snapshot?.recentFailures ?? []).map((job) =>
          jobRow(job, [COLUMNS.id, COLUMNS.task, COLUMNS.finished, COLUMNS.retries, COLUMNS.error]),
        ),
      );
    },
  };
}

/** Workers and queue are rebuilt when what they show changed; the job tables are patched. */
const overviewKeys = new Map();
let overviewTables = null;

function showOverview() {
  refreshRoute = () => {};
  if (!state) return;
  const view = document.getElementById('view');
  if (view.dataset.route !== 'overview') {
    view.dataset.route = 'overview';
    overviewKeys.clear();
    overviewTables = jobTables();
    view.replaceChildren(
      el('section', { 'data-part': 'workers' }),
      el('section', { 'data-part': 'queue' }),
      ...overviewTables.sections,
    );
  }
  const everyFewSeconds = Math.floor(state.now / 5000);
  const parts = [
    ['workers', [state.workers, state.broker, everyFewSeconds], workersSection],
    ['queue', [state.queue, everyFewSeconds], queueSection],
  ];
  for (const [name, inputs, build] of parts) {
    const key = JSON.stringify(inputs);
    if (overviewKeys.get(name) === key) continue;
    overviewKeys.set(name, key);
    const built = build();
    built.dataset.part = name;
    if (name === 'workers') built.classList.add('wide');
    view.querySelector(`:scope > [data-part="${name}"]`).replaceWith(built);
  }
  overviewTables.update();
}

// ---- job list --------------------------------------------------------------------------------

async function showJobs(params, { databaseChanged }) {
  const status = params.get('status') ?? '';
  const task = params.get('task') ?? '';
  const page = Math.max(1, Number(params.get('page') ?? '1') || 1);
  const view = document.getElementById('view');
  const query = new URLSearchParams({ page: String(page) });
  if (status) query.set('status', status);
  if (task) query.set('task', task);
  const routeName = `jobs?${query}`;
  const go = (changes) => {
    const next = new URLSearchParams({ status, task, page: String(page), ...changes });
    for (const [key, value] of [...next]) if (!value || (key === 'page' && value === '1')) next.delete(key);
    location.hash = `jobs${next.size ? `?${next}` : ''}`;
  };
  if (view.dataset.route !== routeName) {
    // The frame (filters, pager) is built once per list; only rows and the pager's state change.
    view.dataset.route = routeName;
    const order =
      status === 'queued'
        ? 'in claim order'
        : FINISHED.has(status)
          ? 'most recently finished first'
          : 'newest first';
    const rows = liveTable(
      [
        ['Job'],
        ['Task'],
        ['Status'],
        ['Priority', 'num'],
        ['Created'],
        ['Finished'],
        ['Retries', 'num'],
        ['Error'],
        [''],
      ],
      'No jobs match.',
    );
    const previous = el(
      'button',
      { class: 'previous', disabled: page <= 1, onclick: () => go({ page: String(page - 1) }) },
      '← Newer',
    );
    const next = el(
      'button',
      { class: 'next', disabled: true, onclick: () => go({ page: String(page + 1) }) },
      'Older →',
    );
    const range = el('span', { class: 'muted' });
    const problem = el('p', { class: 'error', hidden: true });
    view.replaceChildren(
      el(
        'section',
        { id: 'jobs', class: 'wide' },
        el('h2', {}, 'Jobs', el('small', {}, `${order} · page ${page}`)),
        el(
          'div',
          { class: 'filters' },
          el(
            'select',
            { name: 'status', onchange: (event) => go({ status: event.target.value, page: '1' }) },
            ['', 'queued', 'claimed', 'processing', 'completed', 'error'].map((value) =>
              el('option', { value, selected: value === status }, value || 'any status'),
            ),
          ),
          el('input', {
            name: 'task',
            value: task,
            placeholder: 'task type',
            onchange: (event) => go({ task: event.target.value, page: '1' }),
          }),
        ),
        problem,
        rows.node,
        el('div', { class: 'pager' }, previous, range, next),
      ),
    );
    showJobs.frame = { rows, next, range, problem, lastText: null };
  }
  const frame = showJobs.frame;
  const load = async () => {
    const response = await fetch(`/api/jobs?${query}`);
    const text = await response.text();
    // Another list (or page) was opened meanwhile, or nothing changed: leave the page alone.
    if (view.dataset.route !== routeName || text === frame.lastText) return;
    frame.lastText = text;
    const body = JSON.parse(text);
    frame.problem.hidden = response.ok;
    frame.problem.textContent = response.ok ? '' : body.error;
    const jobs = response.ok ? body.jobs : [];
    frame.rows.update(
      jobs.map((job) =>
        jobRow(job, [
          COLUMNS.id,
          COLUMNS.task,
          COLUMNS.status,
          COLUMNS.priority,
          COLUMNS.created,
          COLUMNS.finished,
          COLUMNS.retries,
          COLUMNS.error,
        ]),
      ),
    );
    frame.next.disabled = !body.hasMore;
    frame.range.textContent = jobs.length
      ? `${(page - 1) * body.pageSize + 1}–${(page - 1) * body.pageSize + jobs.length}`
      : '';
  };
  refreshRoute = load;
  if (databaseChanged || frame.lastText === null) await load();
}

// ---- one job ---------------------------------------------------------------------------------

function filePreview(file, poster) {
  if (!file.url)
    return el(
      'div',
      { class: 'file' },
      el('div', { class: 'name' }, `${file.name} (not under the storage root)`),
    );
  let media;
  if (file.kind === 'image') {
    media = el(
      'a',
      { href: file.url, target: '_blank', rel: 'noopener' },
      el('img', { src: file.url, alt: file.name, loading: 'lazy' }),
    );
  } else if (file.kind === 'video') {
    media = el('video', { src: file.url, controls: true, preload: 'metadata', poster: poster?.url });
  } else if (file.kind === 'hls') {
    const probe = document.createElement('video');
    media = probe.canPlayType('application/vnd.apple.mpegurl')
      ? el('video', { src: file.url, controls: true, preload: 'metadata', poster: poster?.url })
      : el('p', { class: 'muted' }, 'This browser does not play HLS itself; open the playlist in a player.');
  } else if (file.kind === 'audio') {
    media = el('audio', { src: file.url, controls: true, preload: 'metadata' });
  }
  return el(
    'div',
    { class: `file ${file.kind}` },
    media,
    el('div', { class: 'name' }, el('a', { href: file.url, target: '_blank', rel: 'noopener' }, file.name)),
  );
}

/** Media first; an HLS rendition's own playlists and segments are listed, not previewed. */
const SUPPORTING_ROLES = new Set(['playlist', 'segment']);

function outputsSection(outputs, poster) {
  if (outputs.length === 0) return section('Outputs', '0', el('p', { class: 'muted' }, 'None yet.'));
  const shown = outputs.filter((file) => !SUPPORTING_ROLES.has(file.role));
  const supporting = outputs.filter((file) => SUPPORTING_ROLES.has(file.role));
  const link = (file) =>
    file.url ? el('a', { href: file.url, target: '_blank', rel: 'noopener' }, file.name) : file.name;
  return section(
    'Outputs',
    `${outputs.length}`,
    el(
      'div',
      { class: 'files' },
      shown.map((file) => filePreview(file, poster)),
    ),
    supporting.length === 0
      ? null
      : el(
          'details',
          { class: 'supporting' },
          el('summary', {}, `${supporting.length} more files (playlists and segments)`),
          el(
            'ul',
            {},
            supporting.map((file) => el('li', {}, link(file))),
          ),
        ),
  );
}

async function showJob(jobId, { databaseChanged, live }) {
  const view = document.getElementById('view');
  const routeName = `job/${jobId}`;
  const load = async () => {
    const response = await fetch(`/api/jobs/${encodeURIComponent(jobId)}`);
    const text = await response.text();
    if (currentRoute !== routeName) return; // another page was opened meanwhile
    const body = JSON.parse(text);
    // Only the progress moved: the bar moves, and nothing else (a playing video) is touched.
    const key = response.ok
      ? JSON.stringify({
          ...body,
          job: {
            ...withoutProgress(body.job),
            worker: body.job.worker && { ...body.job.worker, lease_expires_at: null },
          },
        })
      : text;
    if (view.dataset.route === routeName && key === showJob.lastKey) {
      if (response.ok)
        setProgress(view.querySelector('#job .facts'), liveProgress(jobId)?.progress ?? body.job.progress);
      return;
    }
    showJob.lastKey = key;
    view.dataset.route = routeName;
    if (!response.ok) {
      showJob.last = undefined;
      view.replaceChildren(section('Job', null, el('p', { class: 'error' }, body.error)));
      return;
    }
    showJob.last = body;
    render(body);
  };
  const render = ({ job, params, inputs, outputs, timings }) => {
    const progress = liveProgress(job.job_id);
    const percent = progress?.progress ?? job.progress;
    // A still among the outputs (a thumbnail rendered with the video) stands for the video until it plays.
    const poster = outputs.find((file) => file.kind === 'image' && file.url);
    view.replaceChildren(
      el(
        'section',
        { id: 'job', class: 'wide', 'data-job-id': job.job_id },
        el('h2', {}, el('span', { class: 'mono' }, job.job_id), badge(job.status), actions(job)),
        el(
          'dl',
          { class: 'facts' },
          el('dt', {}, 'Task'),
          el('dd', {}, job.task_type),
          el('dt', {}, 'Progress'),
          el(
            'dd',
            {},
            el('progress', { max: 100, value: Math.round(percent) }),
            el('span', {}, ` ${Math.round(percent)}%`),
          ),
          el('dt', {}, 'Priority'),
          el('dd', {}, job.priority ?? 5),
          el('dt', {}, 'Retries'),
          el('dd', {}, `${job.retry_count} of ${job.max_retries}`),
          el('dt', {}, 'Created'),
          el('dd', {}, time(job.created_at)),
          el('dt', {}, 'Started'),
          el(
            'dd',
            {},
            time(job.started_at),
            timings.queuedMs === null ? '' : ` (waited ${duration(timings.queuedMs)})`,
          ),
          el('dt', {}, 'Finished'),
          el(
            'dd',
            {},
            time(job.completed_at),
            timings.runMs === null ? '' : ` (ran ${duration(timings.runMs)})`,
          ),
          el('dt', {}, 'Worker'),
          el('dd', { class: 'mono' }, job.worker?.worker_id ?? progress?.workerId ?? '–'),
          job.error_message ? [el('dt', {}, 'Error'), el('dd', { class: 'error' }, job.error_message)] : null,
          !job.error_message && job.worker?.last_error
            ? [el('dt', {}, 'Last error'), el('dd', { class: 'error' }, job.worker.last_error)]
            : null,
        ),
      ),
      outputsSection(outputs, poster),
      section(
        'Inputs',
        `${inputs.length}`,
        el(
          'div',
          { class: 'files' },
          inputs.map((file) => filePreview(file)),
        ),
      ),
      section('Parameters', null, el('pre', { class: 'mono' }, JSON.stringify(params, null, 2))),
      job.task_output
        ? section('Task output', null, el('pre', { class: 'mono' }, JSON.stringify(job.task_output, null, 2)))
        : null,
    );
  };
  refreshRoute = load;
  const shown = showJob.last?.job.job_id === jobId && view.dataset.route === routeName;
  if (databaseChanged || !shown) await load();
  else if (live && !FINISHED.has(showJob.last.job.status)) {
    // Progress moved (an MQTT event): the bar moves without asking the server.
    setProgress(view.querySelector('#job .facts'), liveProgress(jobId)?.progress);
  }
}

// ---- routing ---------------------------------------------------------------------------------

let currentRoute = '';

function route({ live = false, databaseChanged = false } = {}) {
  const hash = location.hash.slice(1) || 'overview';
  const changedRoute = hash !== currentRoute;
  currentRoute = hash;
  const [name, query = ''] = hash.split('?');
  for (const link of document.querySelectorAll('header nav a')) {
    link.classList.toggle('active', link.getAttribute('href') === `#${hash}`);
  }
  if (name.startsWith('job/')) {
    let jobId;
    try {
      jobId = decodeURIComponent(name.slice(4));
    } catch {
      jobId = name.slice(4); // a hand-typed hash that is not valid percent-encoding: taken as written
    }
    return void showJob(jobId, {
      databaseChanged: databaseChanged || changedRoute,
      live,
    });
  }
  if (name === 'jobs')
    return void showJobs(new URLSearchParams(query), { databaseChanged: databaseChanged || changedRoute });
  showOverview();
}

window.addEventListener('hashchange', () => route());
connect();
