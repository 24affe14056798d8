"""Placeholdersecurity test of the harness: acquire, look up, release."""
from berthtest import BerthTestCase, main


class Placeholdersecurity(BerthTestCase):
    def test_acquire_lookup_release(self):
        d = self.berthd()
        r = d.acquire("api")
        self.assertEqual(r.status, 201, r)
        lease = r.json
        got = d.get("/v1/services/api")
        self.assertEqual(got.status, 200)
        self.assertEqual(got.json["port"], lease["port"])
        self.assertNotIn("token", got.json)
        self.assertEqual(d.release("api", lease["token"]).status, 204)
        self.assertError(d.get("/v1/services/api"), 404, "not_found")


if __name__ == "__main__":
    main()
