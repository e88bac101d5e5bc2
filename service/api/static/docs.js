// The /docs page: every operation of /openapi.json, listed (no inline script: the CSP forbids it).
fetch('/openapi.json').then(r=>r.json()).then(s=>{const o=document.getElementById('ops');
for(const [p,ms] of Object.entries(s.paths))for(const [m,op] of Object.entries(ms)){const h=document.createElement('h2');
h.textContent=m.toUpperCase()+' '+p;const d=document.createElement('p');d.textContent=(op.summary||'')+' '+(op.description||'');
const pre=document.createElement('pre');pre.textContent=JSON.stringify({parameters:op.parameters,requestBody:op.requestBody,
responses:Object.keys(op.responses)},null,1);o.append(h,d,pre)}});
