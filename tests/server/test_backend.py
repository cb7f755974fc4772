"""The server's model sessions and BLAS leave its event loop a core."""

from __future__ import annotations

from photoseek import threads
from tests.server.conftest import Library, make_client


def test_the_search_lane_runs_the_model_on_one_core_fewer(library: Library):
    with make_client(library) as client:
        model = client.app.state.backend.open_sibling().model
        budget = max(1, threads.usable_cpus() - 1)
        for tower in (model.textual, model.visual):
            assert tower.session.get_session_options().intra_op_num_threads == budget
        assert client.get("/api/search", params={"q": "blue", "k": 2}).json()["results"]
    assert threads.model_threads() == threads.usable_cpus()  # outside the server: every core
