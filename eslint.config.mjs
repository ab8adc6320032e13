// A small set of rules, each for a defect this code could really have; formatting is Prettier's.
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/", ".dagger/sdk/", ".dagger/node_modules/", "bench/"] },
  {
    files: ["**/*.ts"],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { "@typescript-eslint": tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      // a promise nobody awaits loses its error (a deploy step that fails silently)
      "@typescript-eslint/no-floating-promises": "error",
      // an async function where a callback's result is ignored (an event handler, a forEach)
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: { arguments: false } }],
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none", ignoreRestSiblings: true },
      ],
      // types imported as types: the runtime loads no module for them (every call pays each import)
      "@typescript-eslint/consistent-type-imports": ["error", { fixStyle: "inline-type-imports" }],
      eqeqeq: ["error", "always"],
    },
  },
  {
    // the introspector reads a default's text: `1_048_576` was registered as 1
    files: [".dagger/src/index.ts", ".dagger/src/vps.ts"],
    rules: {
      "no-restricted-syntax": [
        "error",
        {
          selector: "Literal[raw=/^[0-9].*_/]",
          message: "write the number without _ separators: Dagger reads 1_000 as 1",
        },
      ],
    },
  },
);
