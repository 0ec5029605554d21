/// <reference types="node" />
// The console's build: Vue single-file components, the client kit compiled from its source
// (clients/typescript/src, so no separate build step), pages split into chunks of their own.
import { fileURLToPath } from "node:url";

import vue from "@vitejs/plugin-vue";
import { defineConfig } from "vite";

const kit = fileURLToPath(new URL("../clients/typescript/src/index.ts", import.meta.url));

export default defineConfig({
  plugins: [vue()],
  resolve: {
    alias: { "@multidb/client": kit },
    // the kit's source imports socket.io-client: resolve it from the console's node_modules
    dedupe: ["socket.io-client", "vue"],
  },
  server: { port: 5173, strictPort: true, host: "localhost" },
  preview: { port: 5173, strictPort: true, host: "localhost" },
  build: { target: "es2022", sourcemap: false, chunkSizeWarningLimit: 200 },
});
