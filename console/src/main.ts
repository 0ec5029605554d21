/** Boot: read where the API is, restore a stored session, mount. */
import { createApp } from "vue";

import App from "./App.vue";
import { loadConfig, start } from "./state";
import "./style.css";

void loadConfig()
  .then(start)
  .finally(() => {
    createApp(App).mount("#app");
  });
