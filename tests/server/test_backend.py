"""The server's model sessions and BLAS leave its event loop a core; idle models are released."""

from __future__ import annotations

import time

from photoseek import threads
from tests.helpers import wait_until
from tests.server.conftest import Library, make_client


def test_the_search_lane_runs_the_model_on_one_core_fewer(library: Library):
    with make_client(library) as client:
        model = client.app.state.backend.open_sibling().model
        budget = max(1, threads.usable_cpus() - 1)
        for tower in (model.textual, model.visual):
            assert tower.session.get_session_options().intra_op_num_threads == budget
        assert client.get("/api/search", params={"q": "blue", "k": 2}).json()["results"]
    assert threads.model_threads() == threads.usable_cpus()  # outside the server: every core


def test_idle_models_are_released_and_load_again_on_the_next_search(library: Library, monkeypatch):
    from photoseek.models.session import LazySession

    made: list[str] = []
    create = LazySession._create

    def counting(session: LazySession):
        made.append(session.model_path.parent.name)
        return create(session)

    monkeypatch.setattr(LazySession, "_create", counting)
    with make_client(library, model_idle_s=0.5) as client:
        assert {"textual", "visual"} <= set(made)  # warmed up at start
        status = wait_until(lambda: (s := client.get("/api/status").json())["models_loaded"] == [] and s,
                            "the idle models to be released")
        assert status["images"] == len(library.ids)
        made.clear()
        found = client.get("/api/search", params={"q": "a green square", "k": 3, "mode": "clip"}).json()["results"]
        assert found and made == ["textual"]  # loaded again, and only the tower the query needed
    with make_client(library, model_idle_s=0) as client:  # 0: kept loaded
        time.sleep(1.0)
        assert any(name.endswith("textual") for name in client.get("/api/status").json()["models_loaded"])
