/** English and Chinese: a reactive locale, `t(key, params)`, dates in the user's own time zone. */
import { reactive } from "vue";

const en = {
  appName: "MultiDB console",
  skip: "Skip to content",
  language: "Language",
  menu: "Main menu",
  loading: "Loading…",
  save: "Save",
  cancel: "Cancel",
  create: "Create",
  edit: "Edit",
  delete: "Delete",
  search: "Search",
  actions: "Actions",
  none: "Nothing here yet.",
  yes: "Yes",
  no: "No",
  enabled: "Enabled",
  disabled: "Disabled",
  status: "Status",
  name: "Name",
  description: "Description",
  code: "Code",
  created: "Created",
  previous: "Previous",
  next: "Next",
  pageOf: "Page {page} of {pages} ({total})",
  saved: "Saved.",
  confirmDelete: "Delete {what}?",
  // login
  loginTitle: "Sign in",
  username: "Username",
  password: "Password",
  signIn: "Sign in",
  signOut: "Sign out",
  sessionEnded: "Your session ended ({reason}). Sign in again.",
  loggedOut: "You signed out.",
  // menus
  "nav.profile": "Profile",
  "nav.users": "Users",
  "nav.roles": "Roles",
  "nav.routes": "Routes",
  "nav.runs": "Task runs",
  "nav.schedules": "Schedules",
  "nav.files": "Files",
  "nav.audit": "Audit log",
  "nav.status": "Status",
  // profile
  email: "Email",
  roles: "Roles",
  admin: "Administrator",
  changePassword: "Change password",
  oldPassword: "Current password",
  newPassword: "New password",
  passwordChanged: "Password changed; your other sessions ended.",
  permissionsHeld: "Permissions",
  // users
  usersTitle: "Users",
  newUser: "New user",
  editUser: "Edit user {name}",
  resetPassword: "Reset password",
  resetPasswordOf: "New password for {name}",
  passwordReset: "Password reset; the user's sessions ended.",
  disable: "Disable",
  enable: "Enable",
  keyword: "Keyword",
  // roles
  rolesTitle: "Roles",
  newRole: "New role",
  editRole: "Edit role {name}",
  interfacePermissions: "Interface permissions",
  routerPermissions: "Menus (router permissions)",
  buttonPermissions: "Buttons (button permissions)",
  onlyGrantable: "Only the codes you may grant are listed.",
  selectAll: "All of {group}",
  // routes
  routesTitle: "Route catalogue",
  method: "Method",
  path: "Path",
  access: "Access",
  function: "Function",
  // tasks
  runsTitle: "Task runs",
  registered: "Registered tasks",
  task: "Task",
  args: "Arguments (JSON list)",
  kwargs: "Keyword arguments (JSON object)",
  run: "Run",
  runStarted: "Run {id} queued.",
  state: "State",
  result: "Result",
  queued: "Queued",
  finished: "Finished",
  live: "Live updates",
  offline: "Offline",
  schedulesTitle: "Schedules",
  newSchedule: "New schedule",
  interval: "Every (seconds)",
  crontab: "Crontab (m h dom mon dow)",
  lastRun: "Last run",
  nextRuns: "Next runs",
  runs: "Runs",
  invalidJson: "{field}: not valid JSON",
  // files
  filesTitle: "Files",
  upload: "Upload",
  chooseFile: "File to upload",
  uploading: "Uploading {name}: {percent}%",
  uploaded: "Uploaded {name}.",
  cancelUpload: "Cancel upload",
  uploadCancelled: "Upload stopped; choose the same file again to resume.",
  download: "Download",
  size: "Size",
  // audit
  auditTitle: "Audit log",
  action: "Action",
  outcome: "Outcome",
  user: "User",
  target: "Target",
  since: "Since",
  until: "Until",
  at: "At",
  any: "Any",
  success: "success",
  failure: "failure",
  filter: "Filter",
  // status
  statusTitle: "Status",
  api: "API",
  socket: "Socket.IO",
  up: "Up ({ms} ms)",
  down: "Down: {error}",
  connected: "Connected",
  notConnected: "Not connected",
  tasksRegistered: "Registered tasks",
  queueNote: "Queue depth and beat's heartbeat are published as CloudWatch metrics by the deployed stack (make dev: see the worker and beat logs).",
  check: "Check again",
  denied: "You may not do this.",
} as const;

type Key = keyof typeof en;

const zh: Record<Key, string> = {
  appName: "MultiDB 管理控制台",
  skip: "跳到内容",
  language: "语言",
  menu: "主菜单",
  loading: "加载中…",
  save: "保存",
  cancel: "取消",
  create: "新建",
  edit: "编辑",
  delete: "删除",
  search: "搜索",
  actions: "操作",
  none: "暂无数据。",
  yes: "是",
  no: "否",
  enabled: "启用",
  disabled: "停用",
  status: "状态",
  name: "名称",
  description: "描述",
  code: "编码",
  created: "创建时间",
  previous: "上一页",
  next: "下一页",
  pageOf: "第 {page} / {pages} 页（共 {total} 条）",
  saved: "已保存。",
  confirmDelete: "删除 {what}？",
  loginTitle: "登录",
  username: "用户名",
  password: "密码",
  signIn: "登录",
  signOut: "退出登录",
  sessionEnded: "会话已结束（{reason}），请重新登录。",
  loggedOut: "您已退出登录。",
  "nav.profile": "个人资料",
  "nav.users": "用户管理",
  "nav.roles": "角色管理",
  "nav.routes": "接口目录",
  "nav.runs": "任务执行",
  "nav.schedules": "定时任务",
  "nav.files": "文件管理",
  "nav.audit": "审计日志",
  "nav.status": "系统状态",
  email: "邮箱",
  roles: "角色",
  admin: "管理员",
  changePassword: "修改密码",
  oldPassword: "当前密码",
  newPassword: "新密码",
  passwordChanged: "密码已修改，其他会话已结束。",
  permissionsHeld: "权限",
  usersTitle: "用户管理",
  newUser: "新建用户",
  editUser: "编辑用户 {name}",
  resetPassword: "重置密码",
  resetPasswordOf: "{name} 的新密码",
  passwordReset: "密码已重置，该用户的会话已结束。",
  disable: "停用",
  enable: "启用",
  keyword: "关键字",
  rolesTitle: "角色管理",
  newRole: "新建角色",
  editRole: "编辑角色 {name}",
  interfacePermissions: "接口权限",
  routerPermissions: "菜单（路由权限）",
  buttonPermissions: "按钮（按钮权限）",
  onlyGrantable: "只列出您可以授予的权限。",
  selectAll: "全选 {group}",
  routesTitle: "接口目录",
  method: "方法",
  path: "路径",
  access: "访问级别",
  function: "函数",
  runsTitle: "任务执行",
  registered: "已注册任务",
  task: "任务",
  args: "位置参数（JSON 数组）",
  kwargs: "关键字参数（JSON 对象）",
  run: "执行",
  runStarted: "任务 {id} 已排队。",
  state: "状态",
  result: "结果",
  queued: "排队时间",
  finished: "完成时间",
  live: "实时更新",
  offline: "离线",
  schedulesTitle: "定时任务",
  newSchedule: "新建定时任务",
  interval: "间隔（秒）",
  crontab: "Crontab（分 时 日 月 周）",
  lastRun: "上次执行",
  nextRuns: "下次执行",
  runs: "执行次数",
  invalidJson: "{field}：不是有效的 JSON",
  filesTitle: "文件管理",
  upload: "上传",
  chooseFile: "要上传的文件",
  uploading: "正在上传 {name}：{percent}%",
  uploaded: "已上传 {name}。",
  cancelUpload: "取消上传",
  uploadCancelled: "上传已停止；再次选择同一文件即可续传。",
  download: "下载",
  size: "大小",
  auditTitle: "审计日志",
  action: "动作",
  outcome: "结果",
  user: "用户",
  target: "对象",
  since: "开始时间",
  until: "结束时间",
  at: "时间",
  any: "全部",
  success: "成功",
  failure: "失败",
  filter: "筛选",
  statusTitle: "系统状态",
  api: "API",
  socket: "Socket.IO",
  up: "正常（{ms} 毫秒）",
  down: "异常：{error}",
  connected: "已连接",
  notConnected: "未连接",
  tasksRegistered: "已注册任务",
  queueNote: "队列长度和 beat 心跳由部署的堆栈作为 CloudWatch 指标发布（make dev：见 worker 和 beat 日志）。",
  check: "重新检查",
  denied: "您无权执行此操作。",
};

export type Locale = "en" | "zh-CN";
const messages: Record<Locale, Record<Key, string>> = { en, "zh-CN": zh };
const KEY = "console:locale";

function initial(): Locale {
  const saved = localStorage.getItem(KEY);
  if (saved === "en" || saved === "zh-CN") return saved;
  return navigator.language.toLowerCase().startsWith("zh") ? "zh-CN" : "en";
}

export const i18n = reactive({ locale: initial() as Locale });
document.documentElement.lang = i18n.locale;

export function setLocale(locale: Locale): void {
  i18n.locale = locale;
  localStorage.setItem(KEY, locale);
  document.documentElement.lang = locale;
}

export function t(key: Key, params: Record<string, string | number> = {}): string {
  return messages[i18n.locale][key].replace(/\{(\w+)\}/g, (_, name: string) => String(params[name] ?? ""));
}

/** A date and time in the user's time zone and language. */
export function when(value: string | null | undefined): string {
  if (!value) return "—";
  const date = new Date(value);
  return Number.isNaN(date.getTime())
    ? value
    : new Intl.DateTimeFormat(i18n.locale, { dateStyle: "medium", timeStyle: "medium" }).format(date);
}

export function bytes(size: number): string {
  const units = ["B", "KiB", "MiB", "GiB"];
  let value = size;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

export type { Key };
