// The platforms we ship, one table for the build and staging scripts: napi's platform name (the
// part of colbert.<name>.node and of the npm package colbert-<name>) → Node's platform and arch,
// the ONNX Runtime library file onnxruntime-node ships for it, and the Rust target.
export const PLATFORMS = {
  'linux-x64-gnu': { os: 'linux', arch: 'x64', ortLib: 'libonnxruntime.so.1', triple: 'x86_64-unknown-linux-gnu' },
  'linux-arm64-gnu': { os: 'linux', arch: 'arm64', ortLib: 'libonnxruntime.so.1', triple: 'aarch64-unknown-linux-gnu' },
  'darwin-arm64': { os: 'darwin', arch: 'arm64', ortLib: 'libonnxruntime.1.dylib', triple: 'aarch64-apple-darwin' },
  'win32-x64-msvc': { os: 'win32', arch: 'x64', ortLib: 'onnxruntime.dll', triple: 'x86_64-pc-windows-msvc' },
  'win32-arm64-msvc': { os: 'win32', arch: 'arm64', ortLib: 'onnxruntime.dll', triple: 'aarch64-pc-windows-msvc' },
}

/** The platform name of a Rust target triple, or undefined for one we do not ship. */
export const platformOfTriple = (triple) => Object.keys(PLATFORMS).find((n) => PLATFORMS[n].triple === triple)

/** This machine's platform name, or undefined. */
export const hostPlatform = () => Object.keys(PLATFORMS).find((n) => PLATFORMS[n].os === process.platform && PLATFORMS[n].arch === process.arch)
