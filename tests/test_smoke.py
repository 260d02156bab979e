import persistence


def test_round_trip(conn):
    lb = persistence.LogBook("book")
    fd = persistence.FlowDetail("flow", "f-1")
    ad = persistence.TaskDetail("task", "a-1")
    fd.add(ad)
    lb.add(fd)
    conn.save_logbook(lb)
    ad.put("SUCCESS", {"x": [1, 2]})
    conn.update_atom_details(ad)
    got = conn.get_logbook(lb.uuid)
    assert got.find("f-1").find("a-1").results == {"x": [1, 2]}
