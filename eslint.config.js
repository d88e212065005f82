// Lint for src/, test/ and bench/: ESLint's and typescript-eslint's recommended rules
// (syntax-aware, not type-aware: `npm run typecheck` does the types), run by `npm test`.
import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "coverage/", "bench/results/", "scratch/", "**/*.d.ts"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2023, sourceType: "module", globals: globals.node },
    rules: {
      // A variable a closure reads before its one assignment (a server's handler and the server) stays `let`.
      "prefer-const": ["error", { ignoreReadBeforeAssign: true }],
      // `_unused` parameters and destructuring placeholders are deliberate.
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
    },
  },
);
