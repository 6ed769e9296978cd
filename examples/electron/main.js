// An Electron main process that searches a colbert index. Addons load in the main process or a
// utilityProcess, never in a sandboxed renderer: the renderer asks over IPC (see preload.js).
//
//   npm install colbert electron electron-builder
//   npx electron .            (development)
//   npx electron-builder      (packaging: see "asarUnpack" in package.json)
'use strict'
const path = require('node:path')

const { app, BrowserWindow, ipcMain } = require('electron')
const { ColBERT, PlaidIndex } = require('colbert')

let ready

async function load() {
  // Model and index live outside app.asar: in userData (writable), or shipped as extraResources.
  const model = await ColBERT.fromPretrained(path.join(process.resourcesPath, 'model'), { quantized: true })
  const index = await PlaidIndex.open(path.join(app.getPath('userData'), 'index'))
  return { model, index }
}

ipcMain.handle('search', async (_event, query) => {
  const { model, index } = await ready
  const [hits] = await index.search(await model.encode([String(query)]), { k: 10, withDocuments: true })
  return hits
})

app.whenReady().then(() => {
  ready = load()
  const win = new BrowserWindow({ webPreferences: { preload: path.join(__dirname, 'preload.js'), sandbox: true } })
  win.loadFile(path.join(__dirname, 'index.html'))
})

app.on('window-all-closed', async () => {
  if (ready) await (await ready).index.close()
  app.quit()
})
