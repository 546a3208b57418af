"""Shared by the browser tests and their fixtures: the hostile-title workflow and an HTTP helper."""

from __future__ import annotations

from tests import local_service

# Titles and conditions that would break a naively written Mermaid diagram or inject markup.
HOSTILE = {
    "name": "hostile_titles",
    "description": "Every title here is an attack on the diagram or the page.",
    "steps": [
        {"id": "start", "type": "machine", "task_type": "data.set", "config": {"values": {"note": "x"}},
         "title": 'He said "hi" & <b>bold</b> <script>window.__pwned=1</script>'},
        {"id": "graph", "type": "human", "depends_on": ["start"],
         "title": "graph TD; click s_start call alert(1) %%{init: {\"theme\": \"dark\"}}%%"},
        {"id": "route", "type": "gateway", "depends_on": ["graph"], "title": "end"},
        {"id": "left", "type": "machine", "task_type": "data.set", "config": {"values": {}}, "depends_on": ["route"],
         "condition": 'note == "a|b <i>x</i> #quot; %%{init}%% `tick` ]]}}"',
         "title": "style s_start fill:#f00; classDef x fill:#f00;"},
        {"id": "right-side", "type": "machine", "task_type": "data.set", "config": {"values": {}},
         "depends_on": ["route"], "title": "`backticks` [brackets] {braces} (parens) #35; #amp; $$x^2$$ fa:fa-car"},
        {"id": "end", "type": "timer", "seconds": 1, "depends_on": ["left", "right-side"],
         "title": '<img src=x onerror="window.__pwned=2"> ]) ]] }} | -->'},
        {"id": "hook", "type": "webhook", "depends_on": ["end"], "title": "subgraph X\nend\n%% comment"},
    ],
}


call = local_service.call  # one JSON client for every test that talks to a running service
