/** The console's pages: each behind a router code of the catalogue (`infra/deploy/catalogue.py` PAGES), or none. */
import { defineAsyncComponent, type Component } from "vue";

import type { Key } from "./i18n";

export interface Page {
  id: string;
  label: Key;
  /** The router permission that shows it; null: every signed-in user. */
  router: string | null;
  component: Component;
}

const lazy = (load: () => Promise<{ default: Component }>): Component => defineAsyncComponent(load);

export const PAGES: Page[] = [
  { id: "profile", label: "nav.profile", router: null, component: lazy(() => import("./pages/ProfilePage.vue")) },
  { id: "users", label: "nav.users", router: "/system/users", component: lazy(() => import("./pages/UsersPage.vue")) },
  { id: "roles", label: "nav.roles", router: "/system/roles", component: lazy(() => import("./pages/RolesPage.vue")) },
  { id: "routes", label: "nav.routes", router: "/system/routes", component: lazy(() => import("./pages/RoutesPage.vue")) },
  { id: "runs", label: "nav.runs", router: "/tasks/runs", component: lazy(() => import("./pages/RunsPage.vue")) },
  {
    id: "schedules",
    label: "nav.schedules",
    router: "/tasks/schedules",
    component: lazy(() => import("./pages/SchedulesPage.vue")),
  },
  { id: "files", label: "nav.files", router: "/files", component: lazy(() => import("./pages/FilesPage.vue")) },
  { id: "audit", label: "nav.audit", router: "/system/audit", component: lazy(() => import("./pages/AuditPage.vue")) },
  { id: "status", label: "nav.status", router: null, component: lazy(() => import("./pages/StatusPage.vue")) },
];
