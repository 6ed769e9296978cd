// @llamaindex/core publishes its subpaths through package.json "exports" only, which this
// project's `moduleResolution: "node"` does not read. These declarations point tsc (and TypeDoc)
// at the typings beside each subpath's build; at run time Node resolves the subpaths through
// "exports" as usual, and the published colbert/llamaindex typings keep the plain specifiers.
declare module '@llamaindex/core/global' {
  export * from '@llamaindex/core/global/dist/index'
}
declare module '@llamaindex/core/llms' {
  export * from '@llamaindex/core/llms/dist/index'
}
declare module '@llamaindex/core/llms/mock' {
  export * from '@llamaindex/core/llms/mock/dist/index'
}
declare module '@llamaindex/core/postprocessor' {
  export * from '@llamaindex/core/postprocessor/dist/index'
}
declare module '@llamaindex/core/query-engine' {
  export * from '@llamaindex/core/query-engine/dist/index'
}
declare module '@llamaindex/core/response-synthesizers' {
  export * from '@llamaindex/core/response-synthesizers/dist/index'
}
declare module '@llamaindex/core/retriever' {
  export * from '@llamaindex/core/retriever/dist/index'
}
declare module '@llamaindex/core/schema' {
  export * from '@llamaindex/core/schema/dist/index'
}
declare module '@llamaindex/core/utils' {
  export * from '@llamaindex/core/utils/dist/index'
}
