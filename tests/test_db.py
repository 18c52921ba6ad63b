from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import inspect

from assistant import db


def test_workers_starting_together_create_the_tables_once(app):
    with app.app_context():
        db.metadata.drop_all(db.get_engine())

    def init() -> None:
        with app.app_context():
            db.init_db()

    with ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(init) for _ in range(4)]:
            future.result()
    with app.app_context():
        assert {"conversations", "turns", "feedback"} <= set(inspect(db.get_engine()).get_table_names())


def test_init_db_keeps_data(client):
    started = client.post("/api/v1/conversations", json={"symptom": "loss is flat"})
    assert started.status_code == 201
    with client.application.app_context():
        db.init_db()
    assert client.get(f"/api/v1/conversations/{started.json['id']}").status_code == 200
