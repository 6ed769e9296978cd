// The sandboxed renderer's only way in: window.colbert.search(query) → hits.
'use strict'
const { contextBridge, ipcRenderer } = require('electron')

contextBridge.exposeInMainWorld('colbert', { search: (query) => ipcRenderer.invoke('search', query) })
