!> @file gyre_ldf.F90
!> @brief Lateral viscosity: Laplacian (rn_ahm) and/or biharmonic (rn_bhm) in rotational/divergent form,
!!        lap(u) = grad(div u) - curl(zeta), with the rn_shlat boundary condition carried by zeta.
module gyre_ldf
   use gyre_par
   use gyre_mpp, only: ni, nj
   use gyre_dom, only: umask, vmask, fmask
   use gyre_oce, only: zeta
   implicit none
   private

   public :: ldf_tend

   real(wp), allocatable :: zlu(:,:), zlv(:,:), zdiv(:,:), zrot(:,:)   ! work arrays

contains

   !> Add the viscous tendencies to the u and v slots (interior); needs dyn_vor first.
   subroutine ldf_tend(px, pt)
      real(wp), intent(in)    :: px(1-nn_hls:, 1-nn_hls:, :)   !< state with valid halos
      real(wp), intent(inout) :: pt(1-nn_hls:, 1-nn_hls:, :)   !< tendencies; the u and v slots are incremented
      integer, parameter :: h = nn_hls
      integer :: ji, jj
      real(wp) :: zrdx, zrdy
      if (.not. allocated(zlu)) allocate(zlu(1-h:ni+h, 1-h:nj+h), zlv(1-h:ni+h, 1-h:nj+h), &
         &                               zdiv(1-h:ni+h, 1-h:nj+h), zrot(1-h:ni+h, 1-h:nj+h))
      zrdx = 1._wp / rn_dx ; zrdy = 1._wp / rn_dy
      if (ln_dynldf_lap .and. rn_ahm > 0._wp) then
         call lap(px(:,:,jp_u), px(:,:,jp_v), zeta, 1, ni, 1, nj)
         do jj = 1, nj
            do ji = 1, ni
               pt(ji,jj,jp_u) = pt(ji,jj,jp_u) + rn_ahm * zlu(ji,jj)
               pt(ji,jj,jp_v) = pt(ji,jj,jp_v) + rn_ahm * zlv(ji,jj)
            end do
         end do
      end if
      if (ln_dynldf_blp .and. rn_bhm > 0._wp) then
         ! first Laplacian on the interior plus one halo row, then the Laplacian of it on the interior
         call lap(px(:,:,jp_u), px(:,:,jp_v), zeta, 0, ni+1, 0, nj+1)
         do jj = 0, nj
            do ji = 0, ni
               zrot(ji,jj) = ((zlv(ji+1,jj) - zlv(ji,jj)) * zrdx - (zlu(ji,jj+1) - zlu(ji,jj)) * zrdy) * fmask(ji,jj)
            end do
         end do
         do jj = 1, nj+1
            do ji = 1, ni+1
               zdiv(ji,jj) = (zlu(ji,jj) - zlu(ji-1,jj)) * zrdx + (zlv(ji,jj) - zlv(ji,jj-1)) * zrdy
            end do
         end do
         do jj = 1, nj
            do ji = 1, ni
               pt(ji,jj,jp_u) = pt(ji,jj,jp_u) - rn_bhm * ((zdiv(ji+1,jj) - zdiv(ji,jj)) * zrdx &
                  &                                      - (zrot(ji,jj) - zrot(ji,jj-1)) * zrdy) * umask(ji,jj)
               pt(ji,jj,jp_v) = pt(ji,jj,jp_v) - rn_bhm * ((zdiv(ji,jj+1) - zdiv(ji,jj)) * zrdy &
                  &                                      + (zrot(ji,jj) - zrot(ji-1,jj)) * zrdx) * vmask(ji,jj)
            end do
         end do
      end if
   end subroutine ldf_tend

   !> Masked vector Laplacian of (pu, pv) into zlu, zlv on [kis:kie] x [kjs:kje] (needs one more point around).
   subroutine lap(pu, pv, prot, kis, kie, kjs, kje)
      real(wp), intent(in) :: pu(1-nn_hls:, 1-nn_hls:)    !< u component (halos valid)
      real(wp), intent(in) :: pv(1-nn_hls:, 1-nn_hls:)    !< v component (halos valid)
      real(wp), intent(in) :: prot(1-nn_hls:, 1-nn_hls:)  !< its vorticity at F points (boundary condition applied)
      integer,  intent(in) :: kis, kie, kjs, kje          !< output index range
      integer :: ji, jj
      real(wp) :: zrdx, zrdy
      zrdx = 1._wp / rn_dx ; zrdy = 1._wp / rn_dy
      do jj = kjs, kje + 1
         do ji = kis, kie + 1
            zdiv(ji,jj) = (pu(ji,jj) - pu(ji-1,jj)) * zrdx + (pv(ji,jj) - pv(ji,jj-1)) * zrdy
         end do
      end do
      do jj = kjs, kje
         do ji = kis, kie
            zlu(ji,jj) = ((zdiv(ji+1,jj) - zdiv(ji,jj)) * zrdx - (prot(ji,jj) - prot(ji,jj-1)) * zrdy) * umask(ji,jj)
            zlv(ji,jj) = ((zdiv(ji,jj+1) - zdiv(ji,jj)) * zrdy + (prot(ji,jj) - prot(ji-1,jj)) * zrdx) * vmask(ji,jj)
         end do
      end do
   end subroutine lap

end module gyre_ldf
