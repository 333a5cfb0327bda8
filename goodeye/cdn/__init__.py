"""The CDN: `/cdn/{org}/{project}/img/{name}`, public images by filename or @alias."""
