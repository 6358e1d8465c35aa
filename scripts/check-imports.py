#!/usr/bin/env python3
"""Import circles between the top-level modules of a crate (default core/src): edges are
`crate::X` references outside test modules; prints every strongly connected component of
more than one module and exits 1 if there is any."""
import os,re,sys,collections
root=sys.argv[1] if len(sys.argv)>1 else "core/src"
mods={}
for dp,dn,fn in os.walk(root):
    for f in fn:
        if not f.endswith('.rs'): continue
        p=os.path.join(dp,f); rel=os.path.relpath(p,root)[:-3]
        parts=rel.split('/')
        if parts[-1] in('mod','lib'): parts=parts[:-1]
        top=parts[0] if parts else 'lib'
        mods.setdefault(top,[]).append(p)
g=collections.defaultdict(set)
for m,files in mods.items():
    for p in files:
        src=open(p).read()
        # strip test modules roughly
        src=src.split("#[cfg(test)]")[0]
        src=re.sub(r"//[^\n]*","",src)
        for t in re.findall(r'crate::([a-z_0-9]+)',src):
            if t!=m and t in mods: g[m].add(t)
# strongly connected components
idx={};low={};st=[];on=set();res=[];c=[0]
def sc(v):
    idx[v]=low[v]=c[0];c[0]+=1;st.append(v);on.add(v)
    for w in g[v]:
        if w not in idx: sc(w);low[v]=min(low[v],low[w])
        elif w in on: low[v]=min(low[v],idx[w])
    if low[v]==idx[v]:
        comp=[]
        while True:
            w=st.pop();on.discard(w);comp.append(w)
            if w==v:break
        if len(comp)>1: res.append(sorted(comp))
sys.setrecursionlimit(10000)
for v in list(mods):
    if v not in idx: sc(v)
print("modules:",len(mods),"edges:",sum(len(v) for v in g.values()))
for r in res: print("cycle component:",r)
sys.exit(1 if res else 0)
