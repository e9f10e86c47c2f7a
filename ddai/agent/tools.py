"""The two tools of one trajectory, search and crop, and what they remember between turns.

Search shows ONE page per call: the first result this trajectory has not seen yet (that page
joins the NDCG list); when every result was seen, the top one is shown again without being
counted twice. Crop works on the last image shown (a page or an earlier crop).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from PIL import Image

from ddai.agent import health
from ddai.agent.config import AgentConfig
from ddai.agent.crop import CropError, View, crop_view, open_page
from ddai.agent.search_client import SearchClient, SearchFailed
from ddai.clients.pages import basename
from ddai.clients.protocol import invalid_bbox_message
from ddai.clients.secrets import safe_text


@dataclass
class Observation:
    text: str  # "" when the observation is only an image
    images: list[Image.Image] = field(default_factory=list)
    ok: bool = True


@dataclass
class TrajectoryTools:
    config: AgentConfig
    search_client: SearchClient
    dataset_id: str
    retrieved: list[str] = field(default_factory=list)  # original page files, viewing order, unique
    crops: list[str] = field(default_factory=list)  # saved crop files
    views: list[View] = field(default_factory=list)  # every image shown, in order
    search_errors: int = 0
    image_errors: int = 0  # result pages that did not open (logged as errors, counted in W&B)

    async def search(self, query: str) -> Observation:
        try:
            results = await self.search_client.search(query, self.dataset_id)
        except SearchFailed as exc:
            self.search_errors += 1
            return Observation(text=f"The search failed ({safe_text(exc, 120)}). You may try the search again.", ok=False)
        if not results:
            return Observation(text="No results were found for this query. Try a different query.", ok=False)
        chosen: str | None = next((r for r in results if r not in self.retrieved), None)
        shown_path = chosen or results[0]
        try:
            image, view = await asyncio.get_running_loop().run_in_executor(
                None, open_page, shown_path, self.config.max_pixels, self.config.min_pixels
            )
        except OSError as exc:
            self.search_errors += 1
            self.image_errors += 1
            health.record("page_image", f"{shown_path}: {type(exc).__name__}: {exc}", dataset_id=self.dataset_id)
            return Observation(text=f"The result image could not be opened ({type(exc).__name__}).", ok=False)
        if chosen is not None:
            self.retrieved.append(chosen)
        self.views.append(view)
        return Observation(text="", images=[image])

    async def crop(self, bbox: tuple[float, float, float, float]) -> Observation:
        if not self.views:
            return Observation(text=invalid_bbox_message("there is no image to crop yet; search first"), ok=False)
        last = self.views[-1]
        try:
            image, view = await asyncio.get_running_loop().run_in_executor(
                None,
                lambda: crop_view(last, bbox, self.config.crops_dir, max_pixels=self.config.max_pixels,
                                  min_pixels=self.config.min_pixels),
            )
        except CropError as exc:
            return Observation(text=invalid_bbox_message(str(exc)), ok=False)
        self.views.append(view)
        if view.image_path != view.page_path:
            self.crops.append(view.image_path)
        return Observation(text="", images=[image])

    @property
    def retrieved_basenames(self) -> list[str]:
        return [basename(p) for p in self.retrieved]
