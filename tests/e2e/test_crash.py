from berthtest import BerthTestCase, main


class P(BerthTestCase):
    def test_p(self):
        self.assertTrue(self.berthd().get("/v1/health").status == 200)


if __name__ == "__main__":
    main()
