#!/usr/bin/env python3
# Checks an evaluation set: every line parses, every source exists in its kb, every expect_all
# string of an answerable question appears (normalised as /work/shared/eval/README.md says) in each
# cited source, interest words come from the prospect's own turns, and contacts are well formed.
# Usage: validate.py [KB QUESTIONS DIALOGS]; without arguments, the demo set (config/kb, config/eval).
import json, re, os, sys, collections
base=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
kb, questions, dialogs = sys.argv[1:4] if len(sys.argv) == 4 else (
    os.path.join(base,'kb'), os.path.join(base,'eval/questions.jsonl'), os.path.join(base,'eval/dialogs.jsonl'))
def norm(s): return re.sub(r'[^\w]|_','',s.lower().replace('ё','е'))
texts={f:norm(open(os.path.join(kb,f),encoding='utf-8').read()) for f in os.listdir(kb)}
bad=0
qs=[json.loads(l) for l in open(questions,encoding='utf-8')]
ids=collections.Counter(q['id'] for q in qs)
assert all(v==1 for v in ids.values()), ids
for q in qs:
    for k in ('id','lang','question','kind','expect_all','sources'): assert k in q,(q,k)
    for s in q['sources']:
        if s not in texts: print('missing source',q['id'],s); bad+=1
    if q['kind'] in ('unanswerable','smalltalk'):
        if q['sources'] or q['expect_all']: print('should be empty',q['id']); bad+=1
        continue
    if not q['expect_all'] and not q.get('expect_any'): print('no expectations',q['id']); bad+=1
    for e in q['expect_all']:
        hits=[s for s in q['sources'] if norm(e) in texts[s]]
        if not hits: print('expect_all not in any source',q['id'],e); bad+=1
        elif len(hits)<len(q['sources']): print('  note: %s %r only in %s of %s'%(q['id'],e,hits,q['sources']))
    if q.get('expect_any'):
        if not any(norm(e) in texts[s] for e in q['expect_any'] for s in q['sources']): print('no expect_any in sources',q['id']); bad+=1
        for e in q['expect_any']:
            if not any(norm(e) in texts[s] for s in q['sources']): print('  note: %s expect_any %r in no source'%(q['id'],e))
print(len(qs),'questions', sorted(collections.Counter((q['lang'],q['kind']) for q in qs).items()))
print(collections.Counter(q['lang'] for q in qs), collections.Counter(q['kind'] for q in qs))
ds=[json.loads(l) for l in open(dialogs,encoding='utf-8')]
assert len(set(d['id'] for d in ds))==len(ds)
for d in ds:
    ex=d['expect']; allturns=norm(' '.join(d['turns']))
    assert 3<=len(d['turns'])<=7, d['id']
    for w in ex.get('interest',[]):
        if norm(w) not in allturns: print('interest not in turns',d['id'],w); bad+=1
    c=ex.get('contact',{})
    if ex['lead'] and not (c.get('phone') or c.get('email')): print('lead without contact',d['id']); bad+=1
    if c.get('phone') and not re.fullmatch(r'\+\d{11}',c['phone']): print('bad phone',d['id']); bad+=1
    if c.get('phone'):
        digits=re.sub(r'\D','',' '.join(d['turns']))
        tail=c['phone'][2:]
        if tail not in digits: print('phone digits not in turns',d['id']); bad+=1
    for k in ('name','email','company'):
        if c.get(k) and c[k].lower() not in ' '.join(d['turns']).lower(): print('contact not in turns',d['id'],k); bad+=1
    for o in ex.get('objections',[]):
        assert o in {'price','timing','competitor','trust','need_to_think','no_budget','authority'},o
print(len(ds),'dialogs', collections.Counter(d['lang'] for d in ds), 'lead', collections.Counter(d['expect']['lead'] for d in ds),'handoff',sum(1 for d in ds if d['expect'].get('handoff')), 'objections', collections.Counter(o for d in ds for o in d['expect'].get('objections',[])))
print('BAD',bad); sys.exit(1 if bad else 0)
