"""Everything that harvests (installed as ckanext.shanghai.harvesters): the
source kinds (sources/), mapping, the stage pipeline, records tables, the
catalog writer, the queue consumers, the scheduler and the bulk index tools
(index/), with their own plugin (``shanghai_harvest``). It may import the
portal extension; the extension never imports it."""
