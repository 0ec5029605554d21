/** A paged list (the API's `{records, total, page, pageSize}`) with its loading and error state. */
import { reactive } from "vue";

import { describe } from "./state";

export interface PageOf<T> {
  records: T[];
  total: number;
  page: number;
  pageSize: number;
}

export function usePaged<T>(load: (page: number, pageSize: number) => Promise<PageOf<T>>, pageSize = 20) {
  const list = reactive({ records: [] as T[], total: 0, page: 1, pageSize, error: "", loading: false });
  async function refresh(page = list.page): Promise<void> {
    list.loading = true;
    try {
      const data = await load(page, list.pageSize);
      Object.assign(list, { records: data.records, total: data.total, page: data.page, error: "" });
    } catch (e) {
      list.error = describe(e);
    } finally {
      list.loading = false;
    }
  }
  return { list, refresh };
}
