import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The end users' self-service page, served by `pbxdesk serve` at /self/ (embedded in the
// binary from dist-self/). Its own bundle: none of the technician's app ships with it.
export default defineConfig({
  plugins: [react()],
  root: fileURLToPath(new URL("./self", import.meta.url)),
  base: "/self/",
  clearScreen: false,
  build: {
    target: "es2022",
    outDir: fileURLToPath(new URL("./dist-self", import.meta.url)),
    emptyOutDir: true,
    chunkSizeWarningLimit: 2000,
  },
});
