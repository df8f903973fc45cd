"""The model zoo: pretrained entries by name, checked by sha256, with model cards.

An entry is a folder of data with fixed file names (see `ebgan_keras.zoo.entries`):
`config.json` (the recipe: architecture, data, training, evaluation),
`metadata.json` (provenance, parameter counts, sha256 of every file, metrics
with their protocol), `generator.weights.h5`, `discriminator.weights.h5`,
`golden.npz` (fixed latents and the outputs they must give), and the model
card `README.md` with `samples.png` and `curves.png`. The shipped entries are
installed with the package; any entry folder on disk loads as well.

Example:

```python
import ebgan_keras as ek

ek.zoo.list_entries()
card = ek.zoo.describe("began_mnist")
model = ek.zoo.load("ebgan_pt_mnist")
images = model.generate(16, seed=0)
```
"""

from __future__ import annotations

from ebgan_keras.zoo import presets
from ebgan_keras.zoo.entries import EntryFormatError
from ebgan_keras.zoo.entries import IntegrityError
from ebgan_keras.zoo.entries import WeightsUnavailableError
from ebgan_keras.zoo.entries import check_golden
from ebgan_keras.zoo.entries import create_model
from ebgan_keras.zoo.entries import describe
from ebgan_keras.zoo.entries import entry_dir
from ebgan_keras.zoo.entries import find_config
from ebgan_keras.zoo.entries import list_entries
from ebgan_keras.zoo.entries import load
from ebgan_keras.zoo.index import baseline_of
from ebgan_keras.zoo.index import markdown_table
from ebgan_keras.zoo.index import write_index
from ebgan_keras.zoo.stages import build
from ebgan_keras.zoo.stages import reevaluate
from ebgan_keras.zoo.stages import rewrite_card

__all__ = [
    "EntryFormatError",
    "IntegrityError",
    "WeightsUnavailableError",
    "baseline_of",
    "build",
    "check_golden",
    "create_model",
    "describe",
    "entry_dir",
    "list_entries",
    "load",
    "find_config",
    "markdown_table",
    "presets",
    "reevaluate",
    "rewrite_card",
    "write_index",
]
