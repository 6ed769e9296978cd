'use strict'
const input = document.getElementById('q')
const list = document.getElementById('hits')
input.addEventListener('change', async () => {
  const hits = await window.colbert.search(input.value)
  list.replaceChildren(...hits.map((h) => Object.assign(document.createElement('li'), { textContent: `${h.score.toFixed(2)} ${h.id}: ${h.text ?? ''}` })))
})
