/*
 * Shangliang dashboard (有事来商量 · 工作统计看板).
 * Reads only the projections HTTP API (docs/API.md) with a read-only bearer token.
 * Charts are inline SVG drawn here: no library, nothing fetched from outside the service.
 */
"use strict";

(() => {
  const CHINA_OFFSET_MS = 8 * 3600 * 1000;
  const PAGE_SIZE = 200;
  const LIST_PAGE_SIZE = 50;
  const FIRST_YEAR = 2019;
  const TOKEN_KEY = "shangliang.token";
  const LANG_KEY = "shangliang.lang";
  const MISSING = "—";

  const OFFICES = {
    yanbian: ["延边州政协", "Yanbian Prefecture CPPCC"],
    yanji: ["延吉市政协", "Yanji CPPCC"],
    tumen: ["图们市政协", "Tumen CPPCC"],
    dunhua: ["敦化市政协", "Dunhua CPPCC"],
    hunchun: ["珲春市政协", "Hunchun CPPCC"],
    longjing: ["龙井市政协", "Longjing CPPCC"],
    helong: ["和龙市政协", "Helong CPPCC"],
    wangqing: ["汪清县政协", "Wangqing CPPCC"],
    antu: ["安图县政协", "Antu CPPCC"],
  };

  // The funnel's stages, each a subset of the one before: collected ⊇ screened ⊇ taken up
  // (a topic, a referral or an answer) ⊇ resolved ⊇ closed. An issue is counted in every
  // stage its current status has reached; those screened out (report, duplicate, rejected)
  // leave after "screened" and are listed beside the funnel.
  const TAKEN_UP = [
    "topic", "referred", "answered", "on_agenda", "consulted", "under_supervision", "overdue",
    "resolved", "closed",
  ];
  const FUNNEL = [
    { code: "submitted", reached: () => true },
    { code: "screened", reached: (status) => status !== "submitted" },
    { code: "taken_up", reached: (status) => TAKEN_UP.includes(status) },
    { code: "resolved", reached: (status) => status === "resolved" || status === "closed" },
    { code: "closed", reached: (status) => status === "closed" },
  ];
  const SCREENED_OUT = ["report", "duplicate", "rejected"];
  const STATUS = {
    submitted: ["已收集", "Collected"],
    screened: ["已筛选", "Screened"],
    taken_up: ["已立项办理", "Taken up"],
    topic: ["列为协商议题", "Consultation topic"],
    report: ["转为《社情民意》", "Public-opinion report"],
    referred: ["转交承办单位", "Referred to a department"],
    on_agenda: ["列入协商会议", "On a meeting's agenda"],
    consulted: ["已协商", "Consulted"],
    under_supervision: ["督办中", "Under supervision"],
    overdue: ["逾期", "Overdue"],
    answered: ["当场解答", "Answered on the spot"],
    resolved: ["已解决", "Resolved"],
    closed: ["已办结", "Closed"],
    duplicate: ["重复", "Duplicate"],
    rejected: ["不予采纳", "Rejected"],
  };
  const SOLVED = new Set(["resolved", "closed", "answered"]);

  const FIGURES = [
    { key: "outreach_activities", zh: ["委员进基层活动", "期"], en: ["Outreach activities", "sessions"] },
    { key: "member_participations", zh: ["参加委员", "人次"], en: ["Member participations", ""] },
    { key: "issues_collected", zh: ["收集问题和建议", "条"], en: ["Issues and suggestions collected", ""] },
    { key: "issues_resolved", zh: ["解决实际问题和困难", "件"], en: ["Problems solved", ""] },
    { key: "key_problems_resolved", zh: ["重点难点问题得到解决", "个"], en: ["Key problems solved", ""] },
  ];
  const MEETINGS = [
    { key: "meetings_held.thematic", zh: "专题", en: "Thematic" },
    { key: "meetings_held.onsite", zh: "现场", en: "On-site" },
    { key: "meetings_held.written", zh: "书面", en: "Written" },
  ];
  const SECONDARY = [
    { key: "reports_forwarded", zh: ["报送《社情民意》", "篇"], en: ["Public-opinion reports", ""] },
    { key: "letters_issued", zh: ["下发督办函", "件"], en: ["Supervision letters", ""] },
    { key: "cases_overdue", zh: ["逾期督办件", "件"], en: ["Overdue cases", ""] },
    { key: "cases_reopened_by_callback", zh: ["回访不满意退回督办件", "件"], en: ["Cases sent back by unsatisfied residents", ""] },
    { key: "median_days_to_resolution", zh: ["办结用时中位数", "天"], en: ["Median days to resolution", "days"] },
    { key: "issues_called_back", zh: ["回访居民", "件"], en: ["Residents called back", ""] },
    { key: "callbacks_satisfied", zh: ["回访满意（含基本满意）", "件"], en: ["Satisfied when called back", ""] },
    { key: "satisfaction_rate", zh: ["满意率", "%"], en: ["Satisfaction rate", "%"], drill: "callbacks_reached" },
    { key: "callback_coverage", zh: ["回访率", "%"], en: ["Follow-up coverage", "%"], drill: "issues_called_back" },
  ];
  // Rates (0.9375) are shown as percentages (93.8).
  const PERCENT = new Set(["satisfaction_rate", "callback_coverage"]);
  // Figures whose items the issue list can show when the API has no drill-down for them.
  const LIST_FALLBACK = { issues_collected: {} };

  const T = {
    zh: {
      title: "有事来商量 · 工作统计看板",
      subtitle: "政协委员进基层 · 协商议事 · 跟踪督办",
      year: "年度", office: "政协", asOf: "截至日期", langSwitch: "English",
      allOffices: "全部政协（合计）", summaryTitle: "年度综述", exportLabel: "导出统计表",
      chartMonth: "问题和建议 · 按月份", chartCategory: "问题和建议 · 按类别",
      chartCommunity: "问题和建议 · 按社区", chartStatus: "办理状态漏斗",
      chartOverdue: "逾期督办件 · 按承办单位", keyTitle: "重点难点问题", officesTitle: "各政协统计",
      source: "数据来源：查询统计服务（只读）", loading: "正在加载…", noData: "暂无数据",
      unavailable: "接口暂未提供此数据", viewItems: "查看明细 ›", timeline: "办理时间线",
      backToList: "‹ 返回列表", prev: "上一页", next: "下一页",
      pageOf: (p, n, t) => `第 ${p} / ${n} 页，共 ${fmt(t)} 条`,
      fromBreakdown: "图表数据来自统计接口；点击柱条查看问题列表",
      listsNow: "（列表为当前状态）",
      funnelNote: "柱长：已到达该阶段的问题数",
      alsoClosed: "另有", clauseSep: "；", listSep: "，", missingFigure: "接口暂未提供 / not provided by the API yet",
      colTitle: "标题", colOffice: "政协", colCategory: "类别", colStatus: "状态",
      colDate: "日期", colDepartment: "承办单位", colCommunity: "社区", colDetail: "详情",
      openTimeline: "时间线 ›", exportFailed: "导出失败", exportUnsupported: "接口暂不支持导出此格式", errorTitle: "无法读取统计数据",
      keyCount: (t, r) => `共 ${fmt(t)} 个，已解决 ${fmt(r)} 个`,
      asOfNote: (d) => `数据截至 ${d}`, noItems: "没有条目", moreItems: (n) => `仅显示前 ${n} 个`,
      allOfficesName: "延边州及各县市政协",
      tokenExpired: "令牌无效或已过期，请重新获取。/ The token is invalid or has expired: get a new one.",
      tokenMissing: "打开看板需要只读令牌。/ The dashboard needs a read-only token.",
      months: ["1月", "2月", "3月", "4月", "5月", "6月", "7月", "8月", "9月", "10月", "11月", "12月"],
      other: "其他",
    },
    en: {
      title: "Shangliang · Work statistics",
      subtitle: "Members in the community · Consultation · Supervision",
      year: "Year", office: "Office", asOf: "As of", langSwitch: "中文",
      allOffices: "All offices (total)", summaryTitle: "The year in summary", exportLabel: "Export figures",
      chartMonth: "Issues by month", chartCategory: "Issues by category",
      chartCommunity: "Issues by community", chartStatus: "Status funnel",
      chartOverdue: "Overdue cases by department", keyTitle: "Key problems", officesTitle: "Figures by office",
      source: "Source: the projections service (read-only)", loading: "Loading…", noData: "No data",
      unavailable: "Not provided by the API yet", viewItems: "Show items ›", timeline: "Timeline",
      backToList: "‹ Back to the list", prev: "Previous", next: "Next",
      pageOf: (p, n, t) => `Page ${p} of ${n}, ${fmt(t)} items`,
      fromBreakdown: "Charts from the statistics API; click a bar for its issues",
      listsNow: " (lists show the current status)",
      funnelNote: "Bar length: issues that reached the stage",
      alsoClosed: "also", clauseSep: "; ", listSep: ", ", missingFigure: "接口暂未提供 / not provided by the API yet",
      colTitle: "Title", colOffice: "Office", colCategory: "Category", colStatus: "Status",
      colDate: "Date", colDepartment: "Department", colCommunity: "Community", colDetail: "Detail",
      openTimeline: "Timeline ›", exportFailed: "Export failed", exportUnsupported: "the API does not export this format yet", errorTitle: "Could not read the figures",
      keyCount: (t, r) => `${fmt(t)} in all, ${fmt(r)} solved`,
      asOfNote: (d) => `Figures as of ${d}`, noItems: "No items", moreItems: (n) => `Only the first ${n} shown`,
      allOfficesName: "all offices",
      tokenExpired: "令牌无效或已过期，请重新获取。/ The token is invalid or has expired: get a new one.",
      tokenMissing: "打开看板需要只读令牌。/ The dashboard needs a read-only token.",
      months: ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
      other: "Other",
    },
  };

  // --- small helpers --------------------------------------------------------------------------

  const $ = (selector) => document.querySelector(selector);
  const numberFormat = new Intl.NumberFormat("en-US");
  const fmt = (n) => numberFormat.format(n);
  const esc = (value) =>
    String(value).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

  class AuthError extends Error {}

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  const state = {
    token: null,
    lang: "zh",
    year: null,
    office: "",
    asOf: "",
    figure: "",
    stats: null,
    officeList: [],
    listStack: [],
  };

  const t = (key, ...args) => {
    const entry = T[state.lang][key];
    return typeof entry === "function" ? entry(...args) : entry;
  };
  const pick = (pair) => (state.lang === "zh" ? pair[0] : pair[1]);
  const officeName = (code) => (OFFICES[code] ? pick(OFFICES[code]) : code);
  const statusName = (code, label) => {
    if (STATUS[code]) return pick(STATUS[code]);
    return label || code;
  };

  /** The value of a figure such as "meetings_held.thematic" in a Figures object. */
  const figureValue = (figures, path) =>
    path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), figures);

  /** A figure as the cards show it: exact, with thousands separators. */
  const formatFigure = (value) => {
    if (value == null || typeof value === "object") return MISSING;
    return Number.isInteger(value) ? fmt(value) : value.toFixed(1);
  };

  /**
   * A figure as the report's closing sentence writes it: two significant digits and
   * "余" ("over") when that rounds down, e.g. 1,137 → "1,100余"; under 100 it is exact.
   */
  const approx = (n, lang = state.lang) => {
    if (n < 100) return fmt(n);
    const unit = 10 ** (Math.floor(Math.log10(n)) - 1);
    const floor = Math.floor(n / unit) * unit;
    if (floor === n) return fmt(n);
    return lang === "zh" ? `${fmt(floor)}余` : `over ${fmt(floor)}`;
  };

  /** The date in China Standard Time (YYYY-MM-DD) and month of an ISO time. */
  const chinaDate = (iso) => new Date(Date.parse(iso) + CHINA_OFFSET_MS).toISOString().slice(0, 10);
  const chinaTime = (iso) => {
    const shifted = new Date(Date.parse(iso) + CHINA_OFFSET_MS).toISOString();
    return `${shifted.slice(0, 10)} ${shifted.slice(11, 16)}`;
  };
  const thisYear = () => new Date(Date.now() + CHINA_OFFSET_MS).getUTCFullYear();

  // --- the API ---------------------------------------------------------------------------------

  // The page lives at <base>/dashboard; the API beside it (a reverse proxy may add a prefix).
  const BASE = location.pathname.replace(/\/dashboard\/?$/, "");

  const apiUrl = (path, params = {}) => {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value !== "" && value !== null && value !== undefined) query.set(key, String(value));
    }
    const text = query.toString();
    return `${BASE}${path}${text ? `?${text}` : ""}`;
  };

  const authHeaders = () => ({ Authorization: `Bearer ${state.token}` });

  async function errorMessage(response) {
    try {
      const body = await response.json();
      if (typeof body.message === "string") return body.message;
      if (typeof body.detail === "string") return body.detail;
    } catch (_) {
      // Not JSON: the status line says enough.
    }
    return `HTTP ${response.status}`;
  }

  async function getJson(path, params) {
    const response = await fetch(apiUrl(path, params), {
      headers: { ...authHeaders(), Accept: "application/json" },
    });
    if (response.status === 401) throw new AuthError(await errorMessage(response));
    if (!response.ok) throw new ApiError(response.status, await errorMessage(response));
    return response.json();
  }

  /** Like getJson, but null when the API does not offer it (yet): any 4xx but 401. */
  async function getOptional(path, params) {
    try {
      return await getJson(path, params);
    } catch (error) {
      if (error instanceof ApiError && error.status < 500) return null;
      throw error;
    }
  }

  // --- token and address -----------------------------------------------------------------------

  function takeToken() {
    const url = new URL(location.href);
    const fromUrl = url.searchParams.get("token");
    if (fromUrl) {
      sessionStorage.setItem(TOKEN_KEY, fromUrl);
      // Out of the address bar, history and any link copied from it.
      url.searchParams.delete("token");
      history.replaceState(null, "", url.pathname + url.search + url.hash);
    }
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function readAddress() {
    const params = new URL(location.href).searchParams;
    const year = Number.parseInt(params.get("year") || "", 10);
    // No year in the address: the latest year that has data, once the API says which.
    state.year = Number.isInteger(year) && year >= 2000 && year <= 2100 ? year : null;
    state.office = params.get("office") || "";
    // A link to one figure's items (from the workbench's issue page) opens its drill-down.
    const figure = params.get("figure") || "";
    state.figure = /^[a-z_]+$/.test(figure) ? figure : "";
    const asOf = params.get("as_of") || "";
    state.asOf = /^\d{4}-\d{2}-\d{2}$/.test(asOf) ? asOf : "";
    const lang = params.get("lang") || localStorage.getItem(LANG_KEY) || "zh";
    state.lang = lang === "en" ? "en" : "zh";
  }

  function writeAddress() {
    const url = new URL(location.href);
    url.searchParams.set("year", String(state.year));
    for (const [key, value] of [["office", state.office], ["as_of", state.asOf]]) {
      if (value) url.searchParams.set(key, value);
      else url.searchParams.delete(key);
    }
    if (state.lang === "en") url.searchParams.set("lang", "en");
    else url.searchParams.delete("lang");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }

  function showTokenPrompt(reason) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = null;
    $("#token-reason").textContent = reason;
    $("#token-example").textContent = `${location.origin}${BASE}/dashboard?token=…`;
    $("#token-prompt").hidden = false;
    $("#content").hidden = true;
    $("#error").hidden = true;
    document.body.dataset.state = "no-token";
  }

  // --- charts: inline SVG ----------------------------------------------------------------------

  /** A round step for axis ticks: 1, 2 or 5 times a power of ten. */
  function niceStep(max, ticks) {
    const raw = Math.max(max, 1) / ticks;
    const power = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
    return Math.max(1, step);
  }

  const empty = (text) => `<p class="chart-empty">${esc(text)}</p>`;

  /** Vertical bars with a value axis (issues by month). */
  function columnChart(entries, options = {}) {
    if (!entries.length || entries.every((e) => !e.value)) return empty(t("noData"));
    const width = 1200;
    const height = 250;
    const left = 44;
    const bottom = 28;
    const top = 22;
    const plotHeight = height - top - bottom;
    const max = Math.max(...entries.map((e) => e.value));
    const step = niceStep(max, 4);
    const axisMax = Math.ceil(max / step) * step;
    const slot = (width - left - 8) / entries.length;
    const barWidth = Math.min(40, slot * 0.62);
    const y = (v) => top + plotHeight - (v / axisMax) * plotHeight;
    const parts = [];
    for (let v = 0; v <= axisMax; v += step) {
      parts.push(`<line class="grid" x1="${left}" x2="${width - 4}" y1="${y(v)}" y2="${y(v)}"></line>`);
      parts.push(`<text class="tick" x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${fmt(v)}</text>`);
    }
    entries.forEach((e, i) => {
      const x = left + i * slot + (slot - barWidth) / 2;
      const h = (e.value / axisMax) * plotHeight;
      parts.push(
        `<g class="bar${e.href ? " clickable" : ""}" data-key="${esc(e.key)}" data-value="${e.value}"` +
          `${e.href ? ` data-href="${esc(e.href)}" data-list-title="${esc(`${options.title || ""}：${e.label}`)}"` : ""}>` +
          `<title>${esc(e.label)}: ${fmt(e.value)}</title>` +
          `<rect x="${x}" y="${y(e.value)}" width="${barWidth}" height="${Math.max(h, 0)}" rx="3"></rect>` +
          (e.value ? `<text class="value" x="${x + barWidth / 2}" y="${y(e.value) - 5}" text-anchor="middle">${fmt(e.value)}</text>` : "") +
          `<text class="label" x="${x + barWidth / 2}" y="${height - 8}" text-anchor="middle">${esc(e.label)}</text></g>`,
      );
    });
    return `<svg class="chart" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(options.title || "")}">${parts.join("")}</svg>`;
  }

  const shorten = (text, size) => (text.length > size ? `${text.slice(0, size - 1)}…` : text);

  /** Horizontal bars, largest first (category, community, department). */
  function barChart(entries, options = {}) {
    const shown = entries.filter((e) => e.value > 0).sort((a, b) => b.value - a.value || a.label.localeCompare(b.label));
    if (!shown.length) return empty(options.emptyText || t("noData"));
    const limit = options.limit || 10;
    let rows = shown;
    if (shown.length > limit) {
      const rest = shown.slice(limit - 1).reduce((sum, e) => sum + e.value, 0);
      rows = [...shown.slice(0, limit - 1), { key: "", label: t("other"), value: rest, rest: true }];
    }
    const width = 520;
    const rowHeight = 28;
    const labelWidth = 128;
    const height = rows.length * rowHeight + 8;
    const max = Math.max(...rows.map((e) => e.value));
    const span = width - labelWidth - 56;
    const parts = rows.map((e, i) => {
      const y = 4 + i * rowHeight;
      const w = Math.max(2, (e.value / max) * span);
      const clickable = e.href && !e.rest;
      return (
        `<g class="bar${options.tone ? ` ${options.tone}` : ""}${clickable ? " clickable" : ""}" data-key="${esc(e.key)}" data-value="${e.value}"` +
        `${clickable ? ` data-href="${esc(e.href)}" data-list-title="${esc(`${options.title || ""}：${e.label}`)}"` : ""}>` +
        `<title>${esc(e.label)}: ${fmt(e.value)}</title>` +
        `<text class="label" x="${labelWidth - 8}" y="${y + 18}" text-anchor="end">${esc(shorten(e.label, 9))}</text>` +
        `<rect x="${labelWidth}" y="${y + 5}" width="${w}" height="${rowHeight - 10}" rx="3"></rect>` +
        `<text class="value" x="${labelWidth + w + 6}" y="${y + 18}">${fmt(e.value)}</text></g>`
      );
    });
    return `<svg class="chart" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(options.title || "")}">${parts.join("")}</svg>`;
  }

  /**
   * The status funnel: for each stage (FUNNEL), the issues whose current status has reached
   * it; `data-now` is how many are at exactly that status now. Those screened out are listed
   * below the funnel.
   */
  function funnelChart(byStatus, links = {}) {
    const total = Object.values(byStatus).reduce((s, n) => s + n, 0);
    if (!total) return empty(t("noData"));
    const reached = FUNNEL.map((stage) => ({
      code: stage.code,
      value: Object.entries(byStatus)
        .filter(([status]) => stage.reached(status))
        .reduce((s, [, n]) => s + n, 0),
      now: byStatus[stage.code] || 0,
    }));
    const width = 520;
    const rowHeight = 34;
    const height = reached.length * rowHeight + 6;
    const center = 350;
    const span = 330;
    const labelSize = state.lang === "zh" ? 9 : 22;
    const parts = reached.map((stage, i) => {
      const w = Math.max(4, (stage.value / total) * span);
      const y = 3 + i * rowHeight;
      return (
        `<g class="bar funnel${links[stage.code] ? " clickable" : ""}" data-key="${esc(stage.code)}" data-value="${stage.value}" data-now="${stage.now}"` +
        `${links[stage.code] ? ` data-href="${esc(links[stage.code])}" data-list-title="${esc(`${t("chartStatus")}：${statusName(stage.code)}`)}"` : ""}>` +
        `<title>${esc(statusName(stage.code))}: ${fmt(stage.value)}</title>` +
        `<rect x="${center - w / 2}" y="${y}" width="${w}" height="${rowHeight - 6}" rx="4"></rect>` +
        `<text class="label" x="${center - span / 2 - 6}" y="${y + 19}" text-anchor="end">${esc(shorten(statusName(stage.code), labelSize))}</text>` +
        `<text class="value inside" x="${center}" y="${y + 19}" text-anchor="middle">${fmt(stage.value)}</text></g>`
      );
    });
    const aside = Object.entries(byStatus)
      .filter(([code, n]) => n > 0 && (SCREENED_OUT.includes(code) || !FUNNEL.some((f) => f.code === code) && !TAKEN_UP.includes(code)))
      .map(([code, n]) => `${esc(statusName(code))} ${fmt(n)}`);
    return (
      `<svg class="chart" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(t("chartStatus"))}">${parts.join("")}</svg>` +
      `<p class="chart-note">${esc(t("funnelNote"))}${aside.length ? `${t("clauseSep")}${esc(t("alsoClosed"))} ${aside.join(t("listSep"))}` : ""}</p>`
    );
  }

  const charts = { columnChart, barChart, funnelChart };

  // --- data for the charts ---------------------------------------------------------------------

  const isCounts = (value) =>
    value && typeof value === "object" && Object.values(value).every((n) => typeof n === "number");

  /** The issues of the year by month, category, community, status and overdue department. */
  async function loadBreakdown() {
    const params = { office: state.office, as_of: state.asOf };
    const answer = await getOptional(`/statistics/${state.year}/breakdown`, params);
    const keys = ["by_month", "by_category", "by_community", "by_status", "overdue_by_department"];
    if (!answer || !keys.every((k) => isCounts(answer[k]))) return null;
    return { ...answer, source: t("fromBreakdown") + (state.asOf ? t("listsNow") : "") };
  }

  function renderCharts(breakdown) {
    const body = (id) => $(`#${id} .chart-body`);
    if (!breakdown) {
      for (const id of ["chart-month", "chart-category", "chart-community", "chart-status", "chart-overdue"]) {
        body(id).innerHTML = empty(t("unavailable"));
        body(id).dataset.available = "false";
      }
      $("#chart-source").textContent = "";
      return;
    }
    // Every bar links to the issue list the API names for its bucket.
    const links = (name) => (breakdown.links && breakdown.links[name]) || {};
    const entries = (name) =>
      Object.entries(breakdown[name]).map(([key, value]) => ({ key, label: key, value, href: links(name)[key] }));
    const months = T[state.lang].months.map((label, i) => {
      const key = String(i + 1);
      return { key, label, value: breakdown.by_month[key] || 0, href: links("by_month")[key] };
    });
    body("chart-month").innerHTML = columnChart(months, { title: t("chartMonth") });
    body("chart-category").innerHTML = barChart(entries("by_category"), { title: t("chartCategory") });
    body("chart-community").innerHTML = barChart(entries("by_community"), { title: t("chartCommunity") });
    body("chart-status").innerHTML = funnelChart(breakdown.by_status, links("by_status"));
    body("chart-overdue").innerHTML = barChart(entries("overdue_by_department"), { tone: "alert", title: t("chartOverdue") });
    for (const id of ["chart-month", "chart-category", "chart-community", "chart-status", "chart-overdue"]) {
      body(id).dataset.available = "true";
    }
    $("#chart-source").textContent = breakdown.source;
  }

  // --- figures -------------------------------------------------------------------------------

  function selectedFigures() {
    const stats = state.stats;
    if (state.office) {
      const found = stats.offices.find((o) => o.office === state.office);
      if (found) return { figures: found, office: state.office };
    }
    return { figures: stats.total, office: "total" };
  }

  const figureSpan = (figures, key, office) => {
    const value = figureValue(figures, key);
    const shown = PERCENT.has(key) && value != null ? (value * 100).toFixed(1) : formatFigure(value);
    return `<span class="num" data-figure="${esc(key)}" data-office="${esc(office)}">${esc(shown)}</span>`;
  };

  function card(def, figures, office, extraClass = "") {
    const [label, unit] = state.lang === "zh" ? def.zh : def.en;
    const present = figureValue(figures, def.key) != null;
    return (
      `<button type="button" class="card figure ${extraClass}${present ? "" : " missing"}"` +
      `${present ? ` data-drill="${esc(def.drill || def.key)}"` : ` disabled title="${esc(t("missingFigure"))}"`}>` +
      `<span class="figure-label">${esc(label)}</span>` +
      `<span class="figure-value">${figureSpan(figures, def.key, office)}${unit ? `<small>${esc(unit)}</small>` : ""}</span>` +
      `<span class="figure-hint">${present ? esc(t("viewItems")) : esc(t("unavailable"))}</span></button>`
    );
  }

  function meetingsCard(figures, office) {
    const present = figureValue(figures, "meetings_held") != null;
    const items = MEETINGS.map(
      (m) => `<span class="meeting"><span class="meeting-kind">${esc(pick([m.zh, m.en]))}</span>${figureSpan(figures, m.key, office)}</span>`,
    ).join("");
    return (
      `<button type="button" class="card figure meetings${present ? "" : " missing"}"` +
      `${present ? ' data-drill="meetings_held"' : ` disabled title="${esc(t("missingFigure"))}"`}>` +
      `<span class="figure-label">${esc(pick(["“有事来商量”协商会议（期）", "Consultation meetings"]))}</span>` +
      `<span class="figure-value meetings-row">${items}</span>` +
      `<span class="figure-hint">${present ? esc(t("viewItems")) : esc(t("unavailable"))}</span></button>`
    );
  }

  /** The report's closing sentence, built from the live figures; absent figures drop out. */
  function sentence(figures, office) {
    const v = (key) => figureValue(figures, key);
    const n = (key, exact = false) => {
      const value = v(key);
      return `<b data-sentence-figure="${esc(key)}">${esc(exact ? fmt(value) : approx(value))}</b>`;
    };
    const has = (key) => typeof v(key) === "number";
    const who = office === "total" ? (state.officeList.length > 1 ? t("allOfficesName") : officeName(state.officeList[0] || "")) : officeName(office);
    const meetings = MEETINGS.every((m) => has(m.key));
    if (state.lang === "zh") {
      const first = [];
      if (has("outreach_activities")) first.push(`开展委员进基层活动 ${n("outreach_activities", true)} 期`);
      if (has("member_participations")) first.push(`参加委员 ${n("member_participations")} 人次`);
      if (has("issues_collected")) first.push(`收集问题和建议 ${n("issues_collected")} 条`);
      if (has("issues_resolved")) first.push(`解决基层和群众实际问题和困难 ${n("issues_resolved")} 件`);
      const clauses = [];
      if (first.length) clauses.push(`共${first.join("，")}`);
      if (meetings) {
        clauses.push(
          `召开“有事来商量”专题协商会议 ${n("meetings_held.thematic", true)} 期、现场协商会议 ${n("meetings_held.onsite", true)} 期、书面协商会议 ${n("meetings_held.written", true)} 期`,
        );
      }
      if (has("key_problems_resolved")) clauses.push(`其中 ${n("key_problems_resolved", true)} 个重点难点问题已得到有效解决`);
      return `${esc(state.year)}年，${esc(who)}${clauses.join("；")}。`;
    }
    const first = [];
    if (has("outreach_activities")) first.push(`held ${n("outreach_activities", true)} outreach activities`);
    if (has("member_participations")) first.push(`counted ${n("member_participations")} member participations`);
    if (has("issues_collected")) first.push(`collected ${n("issues_collected")} issues and suggestions`);
    if (has("issues_resolved")) first.push(`solved ${n("issues_resolved")} of residents' problems`);
    const clauses = [];
    if (first.length) clauses.push(first.join(", "));
    if (meetings) {
      clauses.push(
        `held ${n("meetings_held.thematic", true)} thematic, ${n("meetings_held.onsite", true)} on-site and ${n("meetings_held.written", true)} written consultation meetings`,
      );
    }
    let text = `In ${esc(state.year)}, ${esc(who)} ${clauses.join("; ")}`;
    if (has("key_problems_resolved")) text += `; ${n("key_problems_resolved", true)} key problems were solved`;
    return `${text}.`;
  }

  function exportHref(path, params, format) {
    return apiUrl(path, { ...params, format });
  }

  /** Links to the API's spreadsheet and CSV of a list; a click fetches them with the token. */
  const exportLinks = (name, path, params) =>
    ["xlsx", "csv"]
      .map(
        (format) =>
          `<a class="export" data-format="${format}" data-filename="shangliang-${esc(name)}-${state.year}.${format}"` +
          ` href="${esc(exportHref(path, params, format))}">${format === "xlsx" ? "Excel" : "CSV"}</a>`,
      )
      .join("");

  function renderFigures() {
    const { figures, office } = selectedFigures();
    $("#cards").innerHTML = [
      ...FIGURES.slice(0, 4).map((def) => card(def, figures, office)),
      meetingsCard(figures, office),
      card(FIGURES[4], figures, office, "accent"),
    ].join("");
    $("#secondary-cards").innerHTML = SECONDARY.map((def) => card(def, figures, office, "small")).join("");
    $("#summary-sentence").innerHTML = sentence(figures, office);
    const asOf = state.stats.as_of || state.asOf;
    $("#as-of-note").textContent = asOf ? t("asOfNote", asOf) : "";
    const params = { as_of: state.asOf, office: state.office };
    for (const format of ["xlsx", "csv"]) {
      const link = $(`#export-${format}`);
      link.href = exportHref(`/statistics/${state.year}`, params, format);
      link.dataset.filename = `shangliang-statistics-${state.year}${state.office ? `-${state.office}` : ""}.${format}`;
    }
    renderOfficeTable();
  }

  function renderOfficeTable() {
    const section = $("#offices");
    const offices = state.stats.offices;
    section.hidden = offices.length < 2;
    if (section.hidden) return;
    const columns = [
      ...FIGURES.map((d) => ({ key: d.key, label: pick([d.zh[0], d.en[0]]) })),
      ...MEETINGS.map((m) => ({ key: m.key, label: pick([`${m.zh}协商`, `${m.en} meetings`]) })),
      ...SECONDARY.map((d) => ({ key: d.key, label: pick([d.zh[0], d.en[0]]) })),
    ];
    const row = (figures, code, name, extra = "") =>
      `<tr class="${extra}"${code !== "total" ? ` data-select-office="${esc(code)}"` : ""}><th scope="row">${esc(name)}</th>` +
      columns.map((c) => `<td>${figureSpan(figures, c.key, code)}</td>`).join("") +
      "</tr>";
    section.querySelector(".table-body").innerHTML =
      `<div class="scroll"><table class="figures-table"><thead><tr><th scope="col">${esc(t("colOffice"))}</th>` +
      columns.map((c) => `<th scope="col">${esc(c.label)}</th>`).join("") +
      "</tr></thead><tbody>" +
      offices.map((o) => row(o, o.office, officeName(o.office), o.office === state.office ? "selected" : "")).join("") +
      row(state.stats.total, "total", pick(["合计", "Total"]), "total") +
      "</tbody></table></div>";
  }

  // --- key problems --------------------------------------------------------------------------

  async function loadKeyProblems() {
    const body = $("#key-problems .table-body");
    const params = { key_problem: "true", year: state.year, office: state.office };
    const answer = await getOptional("/issues", { ...params, page_size: PAGE_SIZE });
    if (!answer || !Array.isArray(answer.items)) {
      $("#key-exports").innerHTML = "";
      body.innerHTML = empty(t("unavailable"));
      body.dataset.available = "false";
      $("#key-count").textContent = "";
      return;
    }
    body.dataset.available = "true";
    $("#key-exports").innerHTML = exportLinks("key-problems", "/issues", params);
    const solved = answer.items.filter((i) => SOLVED.has(i.status)).length;
    $("#key-count").textContent = t("keyCount", answer.total, solved);
    body.innerHTML = itemsTable(answer.items) + (answer.total > answer.items.length ? `<p class="muted">${esc(t("moreItems", answer.items.length))}</p>` : "");
  }

  // --- lists of items and timelines ------------------------------------------------------------

  const TITLE_FIELDS = ["title", "name", "theme", "number", "recommendation"];
  const DATE_FIELDS = ["submitted_at", "held_at", "starts_at", "issued_at", "opened_at", "resolved_at", "at", "date"];

  function itemsTable(items) {
    if (!items.length) return empty(t("noItems"));
    const has = (field) => items.some((i) => i[field] !== undefined && i[field] !== null && i[field] !== "");
    const titleField = TITLE_FIELDS.find(has);
    const dateField = DATE_FIELDS.find(has);
    const columns = [];
    if (titleField) columns.push({ label: t("colTitle"), cell: (i) => esc(i[titleField] ?? "") });
    if (has("office")) columns.push({ label: t("colOffice"), cell: (i) => esc(officeName(i.office)) });
    if (has("category")) columns.push({ label: t("colCategory"), cell: (i) => esc(i.category ?? "") });
    if (has("community")) columns.push({ label: t("colCommunity"), cell: (i) => esc(i.community ?? "") });
    if (has("department")) columns.push({ label: t("colDepartment"), cell: (i) => esc(i.department ?? "") });
    if (has("status")) {
      columns.push({
        label: t("colStatus"),
        cell: (i) => `<span class="status status-${esc(i.status)}">${esc(state.lang === "zh" && i.status_label ? i.status_label : statusName(i.status, i.status_label))}</span>`,
      });
    }
    if (dateField) columns.push({ label: t("colDate"), cell: (i) => esc(i[dateField] ? chinaDate(i[dateField]) : "") });
    if (!has("issue_id") && items.some((i) => Array.isArray(i.issue_ids) && i.issue_ids.length)) {
      // A letter or a case: one timeline link per issue it covers.
      columns.push({
        label: t("colDetail"),
        cell: (i) => (i.issue_ids || []).map((id, n) => `<a class="timeline-link" href="#/issue/${encodeURIComponent(id)}">${esc(t("openTimeline"))}${i.issue_ids.length > 1 ? ` ${n + 1}` : ""}</a>`).join(" "),
      });
    }
    if (has("issue_id")) {
      columns.push({
        label: t("colDetail"),
        cell: (i) => (i.issue_id ? `<a class="timeline-link" href="#/issue/${encodeURIComponent(i.issue_id)}">${esc(t("openTimeline"))}</a>` : ""),
      });
    }
    return (
      `<div class="scroll"><table class="items"><thead><tr>${columns.map((c) => `<th scope="col">${esc(c.label)}</th>`).join("")}</tr></thead><tbody>` +
      items.map((item) => `<tr${item.issue_id ? ` data-issue="${esc(item.issue_id)}"` : ""}>${columns.map((c) => `<td>${c.cell(item)}</td>`).join("")}</tr>`).join("") +
      "</tbody></table></div>"
    );
  }

  function openDrawer(title) {
    $("#drawer-title").textContent = title;
    $("#drawer-body").innerHTML = `<p class="muted">${esc(t("loading"))}</p>`;
    $("#drawer").hidden = false;
    $("#drawer").dataset.state = "loading";
  }

  function closeDrawer() {
    $("#drawer").hidden = true;
    state.listStack = [];
    if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  }

  /** A list of the items behind a figure, a chart bar or the key problems, page by page. */
  async function showList(list) {
    state.listStack = [list];
    $("#drawer-back").hidden = true;
    openDrawer(list.title);
    let answer = await getOptional(list.path, { ...list.params, page: list.page, page_size: LIST_PAGE_SIZE });
    if (!answer && list.fallback) {
      answer = await getOptional(list.fallback.path, { ...list.fallback.params, page: list.page, page_size: LIST_PAGE_SIZE });
      if (answer) list = { ...list, path: list.fallback.path, params: list.fallback.params, fallback: null };
      state.listStack = [list];
    }
    const body = $("#drawer-body");
    $("#drawer").dataset.state = "ready";
    if (!answer || !Array.isArray(answer.items)) {
      body.innerHTML = empty(t("unavailable"));
      $("#drawer").dataset.available = "false";
      return;
    }
    $("#drawer").dataset.available = "true";
    $("#drawer").dataset.total = String(answer.total);
    const pages = Math.max(1, Math.ceil(answer.total / (answer.page_size || LIST_PAGE_SIZE)));
    const exports = exportLinks(list.name, list.path, list.params);
    body.innerHTML =
      `<div class="list-head"><span class="muted">${esc(t("pageOf", list.page, pages, answer.total))}</span><span class="exports">${exports}</span></div>` +
      itemsTable(answer.items) +
      `<div class="pager"><button type="button" data-page="${list.page - 1}"${list.page <= 1 ? " disabled" : ""}>${esc(t("prev"))}</button>` +
      `<button type="button" data-page="${list.page + 1}"${list.page >= pages ? " disabled" : ""}>${esc(t("next"))}</button></div>`;
  }

  const STEP_NAMES = {
    ...STATUS,
    screened: ["已筛选", "Screened"],
    closed: ["已办结", "Closed"],
    reopened: ["重新办理", "Reopened"],
    letter_issued: ["下发督办函", "Supervision letter issued"],
  };

  const STREAMS = {
    intake: ["问题收集", "intake"],
    meetings: ["协商会议", "meetings"],
    supervision: ["督办", "supervision"],
    intake_counties: ["县政协问题收集（叶节点）", "county offices' intake (leaf nodes)"],
  };
  const streamName = (stream) => {
    const known = STREAMS[String(stream).toLowerCase()];
    return known ? pick(known) : stream;
  };

  async function showTimeline(issueId) {
    const list = state.listStack[0];
    $("#drawer-back").hidden = !list;
    $("#drawer-back").textContent = t("backToList");
    openDrawer(t("timeline"));
    const body = $("#drawer-body");
    let issue;
    try {
      issue = await getJson(`/issues/${encodeURIComponent(issueId)}`);
    } catch (error) {
      if (error instanceof AuthError) throw error;
      body.innerHTML = `<p class="chart-empty">${esc(error.message)}</p>`;
      $("#drawer").dataset.state = "error";
      return;
    }
    const steps = (issue.timeline || [])
      .map(
        (s) =>
          `<li class="step"><span class="dot"></span><div><strong>${esc(STEP_NAMES[s.step] ? pick(STEP_NAMES[s.step]) : s.step)}</strong>` +
          `<span class="muted"> · ${esc(chinaTime(s.at))} · ${esc(streamName(s.stream))}${s.by ? ` · ${esc(s.by.subject)}` : ""}</span>${s.note ? `<p>${esc(s.note)}</p>` : ""}</div></li>`,
      )
      .join("");
    body.innerHTML =
      `<div class="issue-head"><h3 data-issue-title>${esc(issue.title)}</h3>` +
      `<p><span class="status status-${esc(issue.status)}">${esc(state.lang === "zh" && issue.status_label ? issue.status_label : statusName(issue.status, issue.status_label))}</span> ` +
      `<span class="muted">${esc(officeName(issue.office))} · ${esc(issue.category)} · ${esc(chinaDate(issue.submitted_at))}</span></p></div>` +
      `<ol class="timeline">${steps}</ol>`;
    $("#drawer").dataset.state = "ready";
  }

  async function routeHash() {
    const match = /^#\/issue\/(.+)$/.exec(location.hash);
    if (match && state.token) await guarded(() => showTimeline(decodeURIComponent(match[1])));
  }

  // --- loading the page ----------------------------------------------------------------------

  function applyLanguage() {
    document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
    document.title = `${t("title")}`;
    for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    const button = $("#lang");
    button.textContent = t("langSwitch");
    button.lang = state.lang === "zh" ? "en" : "zh-CN";
  }

  function fillYears() {
    const select = $("#year");
    const year = state.year ?? thisYear();
    const last = Math.max(thisYear(), year);
    const first = Math.min(FIRST_YEAR, year);
    const options = [];
    for (let y = last; y >= first; y -= 1) options.push(`<option value="${y}">${y}${state.lang === "zh" ? "年" : ""}</option>`);
    select.innerHTML = options.join("");
    select.value = String(year);
  }

  function fillOffices() {
    const select = $("#office");
    const list = state.officeList;
    const options = list.length > 1 ? [`<option value="">${esc(t("allOffices"))}</option>`] : [];
    for (const code of list) options.push(`<option value="${esc(code)}">${esc(officeName(code))}</option>`);
    select.innerHTML = options.join("");
    select.disabled = list.length < 2;
    if (state.office && !list.includes(state.office)) state.office = "";
    select.value = list.length > 1 ? state.office : list[0] || "";
  }

  async function guarded(work) {
    try {
      await work();
    } catch (error) {
      if (error instanceof AuthError) {
        showTokenPrompt(T.zh.tokenExpired);
        return;
      }
      const box = $("#error");
      box.innerHTML = `<h2>${esc(t("errorTitle"))}</h2><p>${esc(error.message)}</p>`;
      box.hidden = false;
      document.body.dataset.state = "error";
    }
  }

  async function load() {
    document.body.dataset.state = "loading";
    if (state.year === null) {
      await guarded(async () => {
        const found = await getOptional("/statistics/years", { office: state.office });
        state.year = found && found.years.length ? found.years[0] : thisYear();
      });
      if (state.year === null) return; // the token prompt or the error is showing
    }
    writeAddress();
    applyLanguage();
    fillYears();
    await guarded(async () => {
      state.stats = await getJson(`/statistics/${state.year}`, { as_of: state.asOf });
      state.officeList = state.stats.offices.map((o) => o.office);
      fillOffices();
      $("#as-of").value = state.asOf;
      $("#error").hidden = true;
      $("#token-prompt").hidden = true;
      $("#content").hidden = false;
      renderFigures();
      for (const id of ["chart-month", "chart-category", "chart-community", "chart-status", "chart-overdue"]) {
        $(`#${id} .chart-body`).innerHTML = `<p class="chart-empty">${esc(t("loading"))}</p>`;
      }
      const [breakdown] = await Promise.all([loadBreakdown(), loadKeyProblems()]);
      renderCharts(breakdown);
      document.body.dataset.state = "ready";
    });
    if (state.figure && state.stats) {
      const figure = state.figure;
      // Once: changing the year or the office afterwards shows the cards, not this list.
      state.figure = "";
      const url = new URL(location.href);
      url.searchParams.delete("figure");
      history.replaceState(null, "", url.pathname + url.search + url.hash);
      await guarded(() => showFigure(figure));
    }
    await routeHash();
  }

  /** The drill-down of one figure: the items it counts, for the chosen year and office. */
  function showFigure(figure) {
    const fallback = LIST_FALLBACK[figure]
      ? { path: "/issues", params: { year: state.year, office: state.office, ...LIST_FALLBACK[figure] } }
      : null;
    return showList({
      name: figure, title: figureTitle(figure), path: `/statistics/${state.year}/${figure}`,
      params: { office: state.office, as_of: state.asOf }, page: 1, fallback,
    });
  }

  async function download(link) {
    const response = await fetch(link.href, { headers: authHeaders() });
    if (response.status === 401) throw new AuthError(await errorMessage(response));
    if (!response.ok) {
      toast(`${t("exportFailed")}: ${await errorMessage(response)}`);
      return;
    }
    // An API that does not know `format` yet answers its JSON: that is no spreadsheet.
    if ((response.headers.get("Content-Type") || "").includes("json")) {
      toast(`${t("exportFailed")}: ${t("exportUnsupported")}`);
      return;
    }
    const disposition = response.headers.get("Content-Disposition") || "";
    const named = /filename\*=UTF-8''([^;]+)|filename="?([^";]+)"?/i.exec(disposition);
    const filename = named ? decodeURIComponent(named[1] || named[2]) : link.dataset.filename;
    const url = URL.createObjectURL(await response.blob());
    const save = document.createElement("a");
    save.href = url;
    save.download = filename;
    document.body.append(save);
    save.click();
    save.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  function toast(text) {
    const box = $("#toast");
    box.textContent = text;
    box.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => {
      box.hidden = true;
    }, 6000);
  }

  function figureTitle(key) {
    const def = [...FIGURES, ...SECONDARY].find((d) => d.key === key || d.drill === key);
    const label = def ? pick([def.zh[0], def.en[0]]) : pick(["“有事来商量”协商会议", "Consultation meetings"]);
    const who = state.office ? ` · ${officeName(state.office)}` : "";
    return `${state.year} · ${label}${who}`;
  }

  function onClick(event) {
    const target = event.target.closest("[data-drill], [data-href], a.export, [data-select-office], [data-page], #drawer-close, #drawer-back, a.timeline-link");
    if (!target) {
      if (event.target.id === "drawer") closeDrawer();
      return;
    }
    if (target.matches("a.export")) {
      event.preventDefault();
      guarded(() => download(target));
    } else if (target.dataset.drill) {
      guarded(() => showFigure(target.dataset.drill));
    } else if (target.dataset.href) {
      const link = new URL(target.dataset.href, location.href);
      guarded(() => showList({
        name: `issues-${target.dataset.key}`, title: `${state.year} · ${target.dataset.listTitle}`,
        path: link.pathname, params: Object.fromEntries(link.searchParams), page: 1, fallback: null,
      }));
    } else if (target.dataset.selectOffice) {
      state.office = target.dataset.selectOffice;
      load();
    } else if (target.dataset.page) {
      const list = state.listStack[0];
      guarded(() => showList({ ...list, page: Number(target.dataset.page) }));
    } else if (target.id === "drawer-close") {
      closeDrawer();
    } else if (target.id === "drawer-back") {
      const list = state.listStack[0];
      history.replaceState(null, "", location.pathname + location.search);
      guarded(() => showList(list));
    }
    // A timeline link changes the hash; the hashchange listener opens it.
  }

  function start() {
    readAddress();
    state.token = takeToken();
    applyLanguage();
    fillYears();
    document.addEventListener("click", onClick);
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !$("#drawer").hidden) closeDrawer();
    });
    window.addEventListener("hashchange", routeHash);
    $("#year").addEventListener("change", (event) => {
      state.year = Number(event.target.value);
      load();
    });
    $("#office").addEventListener("change", (event) => {
      state.office = event.target.value;
      load();
    });
    $("#as-of").addEventListener("change", (event) => {
      state.asOf = event.target.value;
      load();
    });
    $("#lang").addEventListener("click", () => {
      state.lang = state.lang === "zh" ? "en" : "zh";
      localStorage.setItem(LANG_KEY, state.lang);
      if (state.token) load();
      else applyLanguage();
    });
    $("#token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const value = $("#token-input").value.trim();
      if (!value) return;
      sessionStorage.setItem(TOKEN_KEY, value);
      state.token = value;
      $("#token-input").value = "";
      load();
    });
    if (!state.token) {
      showTokenPrompt(T.zh.tokenMissing);
      return;
    }
    load();
  }

  // For the end-to-end test and for a curious administrator's console.
  window.ShangliangDashboard = { approx, charts, state };
  start();
})();
