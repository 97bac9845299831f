"""Both simulators in-process (Starlette's TestClient) and erpsync's two systems wired to them."""

from __future__ import annotations

from starlette.testclient import TestClient

from erpsync.systems.acumatica import AcumaticaClient, AcumaticaSystem
from erpsync.systems.acumatica.settings import AcumaticaSettings
from erpsync.systems.magento import MagentoClient, MagentoSystem
from erpsync.systems.magento.settings import MagentoSettings
from sandbox.sims import acumatica as acu_sim
from sandbox.sims import magento as mag_sim


class SimSystems:
    """A fresh Magento sim and Acumatica sim, and the ``MagentoSystem``/``AcumaticaSystem`` reading
    them (connections ``magento`` and ``acumatica``); ``mhttp``/``ahttp`` call the sims directly."""

    def __init__(self) -> None:
        self.mhttp = TestClient(mag_sim.create_app())
        self.ahttp = TestClient(acu_sim.create_app())
        self.magento = MagentoSystem(
            MagentoClient("/rest/default", "admin", "admin123", http=self.mhttp), "magento", MagentoSettings
        )
        self.acumatica = AcumaticaSystem(
            AcumaticaClient("http://testserver", "admin", "123", "Company", http=self.ahttp, poll_interval=0),
            "acumatica",
            AcumaticaSettings,
        )
